package main

// execprobe.go runs a running container's probes as the kubelet does:
// startup first, then liveness and readiness, each with its own delay,
// period, timeout and thresholds. httpGet and tcpSocket reach the pod's
// address; exec runs the command inside the container's namespaces (nsenter)
// as the container's user. A failed startup or liveness probe stops the
// container (SIGTERM, SIGKILL after the grace period); the restart policy
// decides what follows. gRPC probes are not supported: they always fail.

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"dataworks.io/testcluster/podinit"
)

type probeState struct {
	probe               *corev1.Probe
	kind                string
	next                time.Time
	successes, failures int32
	passed              bool
	failureThreshold    int32
	successThreshold    int32
	period, timeout     time.Duration
}

func orDefault(v, def int32) int32 {
	if v > 0 {
		return v
	}
	return def
}

// newProbeState applies the API's defaults (period 10s, timeout 1s, failure
// threshold 3, success threshold 1).
func newProbeState(kind string, pb *corev1.Probe, start time.Time) *probeState {
	if pb == nil {
		return nil
	}
	return &probeState{
		probe: pb, kind: kind, next: start.Add(time.Duration(pb.InitialDelaySeconds) * time.Second),
		failureThreshold: orDefault(pb.FailureThreshold, 3), successThreshold: orDefault(pb.SuccessThreshold, 1),
		period:  time.Duration(orDefault(pb.PeriodSeconds, 10)) * time.Second,
		timeout: time.Duration(orDefault(pb.TimeoutSeconds, 1)) * time.Second,
	}
}

// record returns true when the probe's verdict changed.
func (s *probeState) record(ok bool) bool {
	if ok {
		s.successes, s.failures = s.successes+1, 0
		if !s.passed && s.successes >= s.successThreshold {
			s.passed = true
			return true
		}
		return false
	}
	s.failures, s.successes = s.failures+1, 0
	if s.failures >= s.failureThreshold {
		changed := s.passed || s.kind != "readiness"
		s.passed = false
		return changed
	}
	return false
}

// probe runs until the instance exits.
func (p *execPod) probe(idx int, init bool, c *corev1.Container, pr *proc, spec *podinit.Spec) {
	if init || (c.StartupProbe == nil && c.LivenessProbe == nil && c.ReadinessProbe == nil) {
		return
	}
	now := time.Now()
	startup := newProbeState("startup", c.StartupProbe, now)
	live := newProbeState("liveness", c.LivenessProbe, now)
	ready := newProbeState("readiness", c.ReadinessProbe, now)
	started := startup == nil
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-pr.exited:
			return
		case <-tick.C:
		}
		for _, s := range []*probeState{startup, live, ready} {
			if s == nil || time.Now().Before(s.next) || (s != startup && !started) || (s == startup && started) {
				continue
			}
			s.next = time.Now().Add(s.period)
			ok := p.runProbe(s, c, pr, spec)
			if !s.record(ok) {
				continue
			}
			switch {
			case s == startup && s.passed:
				started = true
				live, ready = newProbeState("liveness", c.LivenessProbe, time.Now()), newProbeState("readiness", c.ReadinessProbe, time.Now())
				p.setStatus(idx, init, func(st *corev1.ContainerStatus) {
					st.Started, st.Ready = ptrTo(true), c.ReadinessProbe == nil
				})
				p.publish()
			case s == ready:
				p.setStatus(idx, init, func(st *corev1.ContainerStatus) { st.Ready = s.passed })
				p.publish()
			case !s.passed: // startup or liveness failed: stop the container
				fmt.Fprintf(logOut, "testcluster: exec pod %s: container %s failed its %s probe, stopping it\n", p.key(), c.Name, s.kind)
				p.stopInstance(pr)
				return
			}
		}
	}
}

func (p *execPod) stopInstance(pr *proc) {
	grace := int64(30)
	if g := p.current().Spec.TerminationGracePeriodSeconds; g != nil {
		grace = *g
	}
	_ = syscall.Kill(pr.pid, syscall.SIGTERM)
	select {
	case <-pr.exited:
	case <-time.After(time.Duration(grace) * time.Second):
		_ = syscall.Kill(-pr.pid, syscall.SIGKILL)
	}
}

func (p *execPod) runProbe(s *probeState, c *corev1.Container, pr *proc, spec *podinit.Spec) bool {
	pb := s.probe
	p.mu.Lock()
	ip := p.ip
	p.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	switch {
	case pb.HTTPGet != nil:
		g := pb.HTTPGet
		host := g.Host
		if host == "" {
			host = ip
		}
		port, err := probePort(g.Port, c)
		if err != nil {
			return false
		}
		scheme := strings.ToLower(string(g.Scheme))
		if scheme == "" {
			scheme = "http"
		}
		path := g.Path
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s://%s%s", scheme, net.JoinHostPort(host, strconv.Itoa(port)), path), nil)
		if err != nil {
			return false
		}
		for _, h := range g.HTTPHeaders {
			req.Header.Add(h.Name, h.Value)
		}
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // as the kubelet
		resp, err := client.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode >= 200 && resp.StatusCode < 400
	case pb.TCPSocket != nil:
		host := pb.TCPSocket.Host
		if host == "" {
			host = ip
		}
		port, err := probePort(pb.TCPSocket.Port, c)
		if err != nil {
			return false
		}
		conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			return false
		}
		conn.Close()
		return true
	case pb.Exec != nil:
		args := []string{"-t", strconv.Itoa(pr.pid), "-m", "-u", "-p"}
		if spec.UID != nil {
			args = append(args, "-S", strconv.Itoa(int(*spec.UID)), "-G", strconv.Itoa(int(derefU32(spec.GID))))
		}
		args = append(append(args, "--"), pb.Exec.Command...)
		cmd := exec.CommandContext(ctx, "nsenter", args...)
		cmd.Env = spec.Env
		return cmd.Run() == nil
	}
	return false
}

func derefU32(v *uint32) uint32 {
	if v == nil {
		return 0
	}
	return *v
}

func probePort(port intstr.IntOrString, c *corev1.Container) (int, error) {
	if port.Type == intstr.Int {
		return port.IntValue(), nil
	}
	for _, cp := range c.Ports {
		if cp.Name == port.StrVal {
			return int(cp.ContainerPort), nil
		}
	}
	return strconv.Atoi(port.StrVal)
}
