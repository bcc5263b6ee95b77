package main

// execcontainer.go runs one container of an exec pod: it resolves the
// environment and command line, starts testcluster-podinit with the
// container's spec, turns stdout and stderr into the CRI log that kwok's
// server serves, and records the exit as the container's terminated state
// (with the termination message). Restarts follow the pod's restartPolicy
// with a back-off, keeping the previous instance's log for `--previous`.

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"dataworks.io/testcluster/podinit"
)

const (
	maxBackoff        = 20 * time.Second
	maxMessageBytes   = 4096
	fallbackLogLines  = 80
	fallbackLogBytes  = 2048
	criMaxLineBytes   = 16 * 1024
	defaultNonRootUID = 65534
)

func (p *execPod) container(idx int, init bool) corev1.Container {
	pod := p.current()
	if init {
		return pod.Spec.InitContainers[idx]
	}
	return pod.Spec.Containers[idx]
}

// runContainer runs the container until it will not be restarted and returns
// its last exit code; ran is false if it never started.
func (p *execPod) runContainer(idx int, init bool, vols map[string]string) (code int, ran bool) {
	policy := p.current().Spec.RestartPolicy
	backoff := time.Second
	for restarts := 0; ; restarts++ {
		var started bool
		code, started = p.runOnce(idx, init, vols, restarts)
		ran = ran || started
		restart := policy == corev1.RestartPolicyAlways || (policy == corev1.RestartPolicyOnFailure && code != 0)
		if init {
			restart = policy != corev1.RestartPolicyNever && code != 0
		}
		if !started || !restart || p.isStopping() {
			return code, ran
		}
		c := p.container(idx, init)
		// As a kubelet does, the dead instance's log is the previous log from the moment the
		// restart count says so (a reader may ask for it during the back-off); it stays the
		// current log too until the next instance starts.
		logFile := p.logPath(c.Name)
		_ = os.Remove(logFile + ".previous")
		if err := os.Link(logFile, logFile+".previous"); err != nil {
			warnf("exec pod %s: keeping the previous log of %s: %v", p.key(), c.Name, err)
		}
		p.setStatus(idx, init, func(s *corev1.ContainerStatus) {
			s.LastTerminationState = s.State
			s.State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{
				Reason:  "CrashLoopBackOff",
				Message: fmt.Sprintf("back-off %s restarting failed container=%s pod=%s_%s(%s)", backoff, c.Name, p.name, p.ns, p.uid),
			}}
			s.RestartCount = int32(restarts + 1)
			s.Ready, s.Started = false, ptrTo(false)
		})
		p.publish()
		if !p.sleep(backoff) {
			return code, ran
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

func ptrTo[T any](v T) *T { return &v }

// credentials: the uid, gid and groups the process runs as, or an error when
// runAsNonRoot forbids the user. Not switchable when the harness is not root.
func (p *execPod) credentials(c *corev1.Container, m imageMapping) (uid, gid *uint32, groups []uint32, err error) {
	pod := p.current()
	var user, group *int64
	nonRoot := false
	if sc := pod.Spec.SecurityContext; sc != nil {
		user, group = sc.RunAsUser, sc.RunAsGroup
		nonRoot = sc.RunAsNonRoot != nil && *sc.RunAsNonRoot
		if sc.FSGroup != nil {
			groups = append(groups, uint32(*sc.FSGroup))
		}
		for _, g := range sc.SupplementalGroups {
			groups = append(groups, uint32(g))
		}
	}
	if sc := c.SecurityContext; sc != nil {
		if sc.RunAsUser != nil {
			user = sc.RunAsUser
		}
		if sc.RunAsGroup != nil {
			group = sc.RunAsGroup
		}
		if sc.RunAsNonRoot != nil {
			nonRoot = *sc.RunAsNonRoot
		}
	}
	if user == nil {
		user = m.User
	}
	if user == nil && nonRoot {
		user = ptrTo(int64(defaultNonRootUID))
	}
	if nonRoot && user != nil && *user == 0 {
		return nil, nil, nil, configErrorf("container's runAsUser breaks non-root policy (pod: %q, container: %s)", p.name, c.Name)
	}
	if !p.k.rootful || user == nil {
		return nil, nil, nil, nil
	}
	u, g := uint32(*user), uint32(0)
	if group != nil {
		g = uint32(*group)
	}
	return &u, &g, groups, nil
}

// fileOwner: volume files belong to the pod's runAsUser and fsGroup.
func (p *execPod) fileOwner(pod *corev1.Pod) volumeFiles {
	v := volumeFiles{uid: -1, gid: -1}
	if sc := pod.Spec.SecurityContext; sc != nil && p.k.rootful {
		if sc.RunAsUser != nil {
			v.uid = int(*sc.RunAsUser)
		}
		if sc.FSGroup != nil {
			v.gid = int(*sc.FSGroup)
		}
	}
	return v
}

// spec builds the init process's spec, or a configError (the pod waits).
func (p *execPod) spec(c *corev1.Container, vols map[string]string, termLog string) (*podinit.Spec, error) {
	pod := p.current()
	m, _ := p.k.images.lookup(c.Image)
	own, err := containerEnv(p.envContext(pod), c, p.k)
	if err != nil {
		return nil, err
	}
	argv, err := commandLine(m, c, own)
	if err != nil {
		return nil, err
	}
	mounts, err := containerMounts(c, vols, own)
	if err != nil {
		return nil, err
	}
	msgPath := c.TerminationMessagePath
	if msgPath == "" {
		msgPath = corev1.TerminationMessagePathDefault
	}
	mounts = append(mounts, podinit.Mount{Source: termLog, Target: msgPath})
	uid, gid, groups, err := p.credentials(c, m)
	if err != nil {
		return nil, err
	}
	dir := c.WorkingDir
	if dir == "" {
		dir = m.WorkingDir
	}
	noNewPrivs := c.SecurityContext != nil && c.SecurityContext.AllowPrivilegeEscalation != nil && !*c.SecurityContext.AllowPrivilegeEscalation
	hostname := podHostname(pod)
	return &podinit.Spec{
		Argv: argv, Env: processEnv(m, hostname, own), Dir: dir, Hostname: hostname,
		HostsFile: p.hostsPath(), Mounts: mounts, Expose: m.Expose, UID: uid, GID: gid, Groups: groups,
		NoNewPrivs: noNewPrivs, MountProc: true, NiceLevel: niceFor(c, p.k.cg.enforced()),
	}, nil
}

// niceFor maps a CPU limit below one core to a nice level when no cgroup
// enforces it: 500m -> 5, 100m -> 9. Nothing is done for a core or more.
func niceFor(c *corev1.Container, cgroupLimits bool) int {
	if cgroupLimits {
		return 0
	}
	q, ok := c.Resources.Limits[corev1.ResourceCPU]
	if !ok || q.MilliValue() >= 1000 {
		return 0
	}
	return int(10 - q.MilliValue()/100)
}

// runOnce starts the container once and waits for it; started is false when
// the pod's deletion came before the process could start.
func (p *execPod) runOnce(idx int, init bool, vols map[string]string, restarts int) (code int, started bool) {
	c := p.container(idx, init)
	cdir := filepath.Join(p.dir, "containers", c.Name)
	termLog := filepath.Join(cdir, "termination-log")
	var spec *podinit.Spec
	told := ""
	for {
		if p.isStopping() {
			return 0, false
		}
		err := os.MkdirAll(cdir, 0o755)
		if err == nil {
			err = writeFile(termLog, nil, 0o666)
		}
		if err == nil {
			spec, err = p.spec(&c, vols, termLog)
		}
		if err == nil {
			break
		}
		reason := "CreateContainerConfigError"
		var ce *configError
		if !errors.As(err, &ce) {
			reason = "CreateContainerError"
		}
		if err.Error() != told {
			told = err.Error()
			p.setStatus(idx, init, func(s *corev1.ContainerStatus) {
				s.State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: err.Error()}}
			})
			p.publish()
		}
		if !p.sleep(2 * time.Second) {
			return 0, false
		}
	}
	logFile := p.logPath(c.Name)
	if restarts > 0 {
		_ = os.Remove(logFile) // its content lives on as the previous log (runContainer linked it)
	}
	log, err := newCRILog(logFile)
	if err != nil {
		warnf("exec pod %s: %v", p.key(), err)
		return 128, false
	}
	defer log.close()
	specPath := filepath.Join(cdir, "spec.json")
	containerID := fmt.Sprintf("testcluster://%s-%s-%d", p.uid, c.Name, restarts)
	cgroup, procs, err := p.k.cg.create(fmt.Sprintf("%s-%s-%d", p.uid, c.Name, restarts), c.Resources)
	if err != nil {
		warnf("exec pod %s: container %s runs without its limits: %v", p.key(), c.Name, err)
		cgroup.remove()
		cgroup, procs = nil, nil
	}
	defer cgroup.remove()
	spec.Cgroups = procs
	data, _ := json.Marshal(spec)
	if err := writeFile(specPath, data, 0o600); err != nil {
		warnf("exec pod %s: %v", p.key(), err)
		return 128, false
	}
	pr, startedAt, err := p.start(specPath, log)
	if err != nil {
		now := metav1.Now()
		p.setStatus(idx, init, func(s *corev1.ContainerStatus) {
			s.ContainerID = containerID
			s.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
				ExitCode: 128, Reason: reasonOf(err), Message: err.Error(), StartedAt: now, FinishedAt: now, ContainerID: containerID,
			}}
		})
		p.publish()
		return 128, true
	}
	p.noteStartup(startedAt)
	p.setStatus(idx, init, func(s *corev1.ContainerStatus) {
		s.ContainerID = containerID
		s.State = corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(startedAt)}}
		s.Started = ptrTo(c.StartupProbe == nil)
		s.Ready = !init && c.ReadinessProbe == nil && c.StartupProbe == nil
	})
	p.publish()
	go p.probe(idx, init, &c, pr, spec)
	code = p.wait(pr)
	log.drain()
	now := metav1.Now()
	reason := "Completed"
	switch {
	case cgroup.oomKilled():
		reason = "OOMKilled"
	case code != 0:
		reason = "Error"
	}
	msg := readMessage(termLog)
	if msg == "" && code != 0 && c.TerminationMessagePolicy == corev1.TerminationMessageFallbackToLogsOnError {
		msg = log.tail()
	}
	p.setStatus(idx, init, func(s *corev1.ContainerStatus) {
		s.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			ExitCode: int32(code), Reason: reason, Message: msg, StartedAt: metav1.NewTime(startedAt), FinishedAt: now, ContainerID: containerID,
		}}
		s.Started, s.Ready = ptrTo(false), false
	})
	p.publish()
	return code, true
}

type startError struct{ reason, msg string }

func (e *startError) Error() string { return e.msg }

func reasonOf(err error) string {
	var se *startError
	if errors.As(err, &se) {
		return se.reason
	}
	return "StartError"
}

// start runs testcluster-podinit and waits for its "ok" (or its error).
func (p *execPod) start(specPath string, log *criLog) (*proc, time.Time, error) {
	statusR, statusW, err := os.Pipe()
	if err != nil {
		return nil, time.Time{}, err
	}
	defer statusR.Close()
	outR, outW, err := os.Pipe()
	if err != nil {
		statusW.Close()
		return nil, time.Time{}, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		statusW.Close()
		outR.Close()
		outW.Close()
		return nil, time.Time{}, err
	}
	cmd := exec.Command(p.k.opts.podinit, specPath)
	cmd.Stdout, cmd.Stderr, cmd.ExtraFiles = outW, errW, []*os.File{statusW}
	cmd.SysProcAttr = p.k.initAttrs()
	cmd.Env = []string{}
	p.mu.Lock()
	stopping := p.stopping
	p.mu.Unlock()
	if stopping {
		err = errors.New("pod is being deleted")
	} else {
		err = p.k.spawn.start(cmd)
	}
	statusW.Close()
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		return nil, time.Time{}, &startError{"StartError", fmt.Sprintf("start testcluster-podinit: %v", err)}
	}
	log.pump(outR, "stdout")
	log.pump(errR, "stderr")
	pr := &proc{pid: cmd.Process.Pid, exited: make(chan struct{})}
	name := filepath.Base(filepath.Dir(specPath))
	p.mu.Lock()
	p.procs[name] = pr
	p.mu.Unlock()
	var exitCode int
	go func() {
		err := cmd.Wait()
		exitCode = 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				exitCode = 128 + int(ws.Signal())
			} else {
				exitCode = ee.ExitCode()
			}
		}
		pr.code = exitCode
		close(pr.exited)
		p.mu.Lock()
		if p.procs[name] == pr {
			delete(p.procs, name)
		}
		p.mu.Unlock()
	}()
	line, _ := bufio.NewReader(statusR).ReadString('\n')
	startedAt := time.Now()
	if rest, ok := strings.CutPrefix(line, "ok "); ok {
		if _, err := strconv.Atoi(strings.TrimSpace(rest)); err == nil {
			return pr, startedAt, nil
		}
	}
	<-pr.exited
	log.drain()
	if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "err "); ok {
		reason, msg, _ := strings.Cut(rest, "\t")
		return nil, startedAt, &startError{reason, msg}
	}
	return nil, startedAt, &startError{"StartError", fmt.Sprintf("testcluster-podinit exited with %d before starting the command", pr.code)}
}

// wait waits for the container to exit; on deletion it sends SIGTERM and,
// after the grace period, SIGKILL to the whole container.
func (p *execPod) wait(pr *proc) int {
	select {
	case <-pr.exited:
		return pr.code
	case <-p.stopCh:
	}
	_ = syscall.Kill(pr.pid, syscall.SIGTERM)
	for {
		select {
		case <-pr.exited:
			return pr.code
		case <-time.After(100 * time.Millisecond):
			if time.Now().After(p.killDeadline()) {
				_ = syscall.Kill(-pr.pid, syscall.SIGKILL)
				<-pr.exited
				return pr.code
			}
		}
	}
}

func writeFile(path string, data []byte, mode os.FileMode) error {
	if err := os.WriteFile(path, data, mode); err != nil {
		return err
	}
	return os.Chmod(path, mode)
}

func readMessage(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	b, _ := io.ReadAll(io.LimitReader(f, maxMessageBytes))
	return string(b)
}
