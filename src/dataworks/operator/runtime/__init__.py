"""The operator runtime: hosts controllers of any kind (cache, queue, timers, apply, Events)."""
