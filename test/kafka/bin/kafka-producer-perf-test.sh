#!/bin/sh
# Kafka's producer perf tool, as bin/kafka-producer-perf-test.sh of a Kafka distribution runs
# it, from the jars `make kafka` fetched. A stream benchmark on Kafka finds it on PATH (the
# tests put this directory there) and measures its ceiling with it.
lib="$(cd "$(dirname "$0")/../lib" && pwd)"
exec java -Xmx256m -XX:+UseSerialGC -cp "$lib/*" org.apache.kafka.tools.ProducerPerformance "$@"
