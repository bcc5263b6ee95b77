package main

// execpod.go is the life of one exec pod, from bound to deleted.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
)

func everything() labels.Selector { return labels.Everything() }

type execPod struct {
	k        *execKeeper
	uid      types.UID
	ns, name string
	observed time.Time // when the harness first saw the pod bound
	dir      string

	ctx    context.Context // cancelled when the pod object is gone
	cancel context.CancelFunc
	stopCh chan struct{} // closed when deletion is requested
	done   chan struct{} // closed when run returns

	mu           sync.Mutex
	pod          *corev1.Pod
	ip           string
	startTime    *metav1.Time
	phase        corev1.PodPhase
	initialized  bool
	sandbox      bool
	initStatuses []corev1.ContainerStatus
	statuses     []corev1.ContainerStatus
	procs        map[string]*proc
	stopping     bool
	deleting     bool      // the API asked for the pod's deletion
	deadline     time.Time // SIGKILL after this, once stopping
	startupSent  bool
	finished     bool
	confirmed    bool

	publishMu sync.Mutex
}

// proc is one running container instance: its init process.
type proc struct {
	pid    int
	code   int // exit code, set before exited is closed
	exited chan struct{}
}

func newExecPod(k *execKeeper, pod *corev1.Pod) *execPod {
	ctx, cancel := context.WithCancel(context.Background())
	p := &execPod{
		k: k, uid: pod.UID, ns: pod.Namespace, name: pod.Name, observed: time.Now(),
		dir: filepath.Join(k.root, fmt.Sprintf("%s_%s_%s", pod.Namespace, pod.Name, pod.UID)),
		ctx: ctx, cancel: cancel, stopCh: make(chan struct{}), done: make(chan struct{}),
		pod: pod.DeepCopy(), phase: corev1.PodPending, procs: map[string]*proc{},
	}
	for _, c := range pod.Spec.InitContainers {
		p.initStatuses = append(p.initStatuses, waitingStatus(c, "PodInitializing", ""))
	}
	for _, c := range pod.Spec.Containers {
		reason := "ContainerCreating"
		if len(pod.Spec.InitContainers) > 0 {
			reason = "PodInitializing"
		}
		p.statuses = append(p.statuses, waitingStatus(c, reason, ""))
	}
	return p
}

func (p *execPod) key() string { return p.ns + "/" + p.name }

func (p *execPod) current() *corev1.Pod {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pod
}

// update takes a newer version of the pod; a deletion request stops it.
func (p *execPod) update(pod *corev1.Pod) {
	p.mu.Lock()
	p.pod = pod.DeepCopy()
	deleting := pod.DeletionTimestamp != nil
	finished := p.finished
	if deleting {
		grace := int64(30)
		if pod.DeletionGracePeriodSeconds != nil {
			grace = *pod.DeletionGracePeriodSeconds
		}
		deadline := time.Now().Add(time.Duration(grace) * time.Second)
		p.deleting = true
		if !p.stopping {
			p.stopping = true
			p.deadline = deadline
			close(p.stopCh) // each container's runner sends SIGTERM
		} else if deadline.Before(p.deadline) {
			p.deadline = deadline
		}
	}
	p.mu.Unlock()
	if deleting && finished {
		go p.confirmDeletion()
	}
}

// gone: the pod object no longer exists (force deletion, or our own
// confirmation): kill whatever runs, free the directory.
func (p *execPod) gone() {
	p.halt()
	p.cancel()
	go func() {
		<-p.done
		_ = os.RemoveAll(p.dir)
		p.k.remove(p)
	}()
}

// halt stops the pod at once: nothing restarts, every process is killed.
func (p *execPod) halt() {
	p.mu.Lock()
	if !p.stopping {
		p.stopping = true
		close(p.stopCh)
	}
	p.deadline = time.Now()
	p.mu.Unlock()
	p.killAll()
}

func (p *execPod) isStopping() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stopping
}

func (p *execPod) killDeadline() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.deadline
}

func (p *execPod) killAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pr := range p.procs {
		_ = syscall.Kill(-pr.pid, syscall.SIGKILL)
	}
}

func (p *execPod) waitProcs(d time.Duration) {
	p.mu.Lock()
	var chans []chan struct{}
	for _, pr := range p.procs {
		chans = append(chans, pr.exited)
	}
	p.mu.Unlock()
	timeout := time.After(d)
	for _, ch := range chans {
		select {
		case <-ch:
		case <-timeout:
			return
		}
	}
}

// sleep waits d unless deletion is requested first; false if it was.
func (p *execPod) sleep(d time.Duration) bool {
	select {
	case <-p.stopCh:
		return false
	case <-time.After(d):
		return true
	}
}

func (p *execPod) peer() (peer, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ip == "" || p.finished {
		return peer{}, false
	}
	return peer{namespace: p.ns, hostname: podHostname(p.pod), subdomain: p.pod.Spec.Subdomain, ip: p.ip, labels: p.pod.Labels}, true
}

func podHostname(pod *corev1.Pod) string {
	h := pod.Spec.Hostname
	if h == "" {
		h = pod.Name
	}
	if len(h) > 63 {
		h = h[:63]
	}
	return h
}

func (p *execPod) hostsPath() string { return filepath.Join(p.dir, "etc-hosts") }

func (p *execPod) writeHosts(content string) error { return writeInPlace(p.hostsPath(), content) }

func (p *execPod) logPath(container string) string {
	return filepath.Join(p.k.logDir, p.ns, fmt.Sprintf("%s_%s", p.name, p.uid), container+".log")
}

// run is the pod's whole life; it returns when no container will run again.
func (p *execPod) run() {
	defer close(p.done)
	k := p.k
	pod := p.current()
	if err := k.label(p.ctx, pod); err != nil {
		if !apierrors.IsNotFound(err) && p.ctx.Err() == nil {
			warnf("exec pod %s: %v", p.key(), err)
		}
		return
	}
	files := map[string]string{}
	for _, c := range append(append([]corev1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...) {
		files[c.Name] = p.logPath(c.Name)
	}
	if err := os.MkdirAll(filepath.Dir(p.logPath("x")), 0o755); err != nil {
		warnf("exec pod %s: %v", p.key(), err)
	}
	if err := k.registerLogs(p.ctx, pod, files); err != nil && p.ctx.Err() == nil {
		warnf("exec pod %s: register logs: %v", p.key(), err)
	}
	stopCtx, stopCancel := context.WithCancel(p.ctx)
	go func() {
		select {
		case <-p.stopCh:
		case <-stopCtx.Done():
		}
		stopCancel()
	}()
	defer stopCancel()
	if !k.acquire(stopCtx, p, func(msg string) {
		p.setAllWaiting("ContainerCreating", msg)
		p.publish()
	}) {
		p.finish(corev1.PodFailed)
		return
	}
	p.runWithSlot()
	k.release()
}

func (p *execPod) runWithSlot() {
	k := p.k
	ip, err := k.ips.get()
	if err != nil {
		p.setAllWaiting("ContainerCreating", err.Error())
		p.publish()
		p.finish(corev1.PodFailed)
		return
	}
	defer k.ips.put(ip)
	if err := os.MkdirAll(p.dir, 0o755); err == nil {
		err = p.writeHosts(hostsHeader)
	}
	if err != nil {
		warnf("exec pod %s: %v", p.key(), err)
	}
	now := metav1.Now()
	p.mu.Lock()
	p.ip, p.startTime, p.sandbox = ip, &now, true
	p.mu.Unlock()
	k.markDirty()
	p.publish()

	vols, ok := p.volumes()
	if !ok {
		p.finish(corev1.PodFailed)
		return
	}
	pod := p.current()
	for i := range pod.Spec.InitContainers {
		code, ran := p.runContainer(i, true, vols)
		if !ran || code != 0 {
			p.finish(corev1.PodFailed)
			return
		}
	}
	p.mu.Lock()
	p.initialized = true
	for i := range p.statuses {
		if w := p.statuses[i].State.Waiting; w != nil && w.Reason == "PodInitializing" {
			w.Reason = "ContainerCreating"
		}
	}
	p.mu.Unlock()
	p.publish()
	var wg sync.WaitGroup
	codes := make([]int, len(pod.Spec.Containers))
	for i := range pod.Spec.Containers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, ran := p.runContainer(i, false, vols)
			if !ran {
				code = 1
			}
			codes[i] = code
		}()
	}
	wg.Wait()
	phase := corev1.PodSucceeded
	for _, c := range codes {
		if c != 0 {
			phase = corev1.PodFailed
		}
	}
	p.finish(phase)
}

// volumes prepares the pod's volumes, waiting (as ContainerCreating) while a
// ConfigMap, Secret or claim is missing or unbound.
func (p *execPod) volumes() (map[string]string, bool) {
	k := p.k
	told := ""
	for {
		pod := p.current()
		src := volumeSource{cs: k.cs, objs: k, ctx: p.ctx, ec: p.envContext(pod), owner: p.fileOwner(pod)}
		vols, err := src.prepareVolumes(filepath.Join(p.dir, "volumes"))
		if err == nil {
			return vols, true
		}
		var ce *configError
		if !errors.As(err, &ce) {
			warnf("exec pod %s: %v", p.key(), err)
		}
		if msg := "MountVolume: " + err.Error(); msg != told {
			p.setAllWaiting("ContainerCreating", msg)
			p.publish()
			told = msg
		}
		if !p.sleep(250 * time.Millisecond) { // a new namespace's kube-root-ca.crt comes a moment later
			return nil, false
		}
	}
}

func (p *execPod) envContext(pod *corev1.Pod) envContext {
	p.mu.Lock()
	ip := p.ip
	p.mu.Unlock()
	return envContext{pod: pod, podIP: ip, apiHost: p.k.apiHost, apiPort: p.k.apiPort, allocated: nodeAllocatable()}
}

// finish records the final phase, frees the pod's address for others and,
// if deletion was requested, confirms it.
func (p *execPod) finish(phase corev1.PodPhase) {
	p.mu.Lock()
	if p.stopping && phase == corev1.PodSucceeded && !p.allSucceeded() {
		phase = corev1.PodFailed
	}
	p.phase, p.finished = phase, true
	deleting := p.deleting
	p.mu.Unlock()
	p.k.markDirty()
	if p.k.isStopped() { // the harness is shutting down: the API is left as it is
		return
	}
	if p.ctx.Err() == nil && p.sandboxOrStatusShown() {
		p.publish()
	}
	if deleting {
		p.confirmDeletion()
	}
}

func (p *execPod) sandboxOrStatusShown() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sandbox || !p.deleting
}

func (p *execPod) allSucceeded() bool {
	for _, s := range p.statuses {
		if s.State.Terminated == nil || s.State.Terminated.ExitCode != 0 {
			return false
		}
	}
	return true
}

// confirmDeletion deletes the pod with grace 0, as a kubelet does once its
// containers are gone; finalizers (the Job controller's) still apply.
func (p *execPod) confirmDeletion() {
	p.mu.Lock()
	if p.confirmed {
		p.mu.Unlock()
		return
	}
	p.confirmed = true
	p.mu.Unlock()
	zero := int64(0)
	uid := p.uid
	err := p.k.cs.CoreV1().Pods(p.ns).Delete(context.Background(), p.name, metav1.DeleteOptions{
		GracePeriodSeconds: &zero, Preconditions: &metav1.Preconditions{UID: &uid},
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		warnf("exec pod %s: confirm deletion: %v", p.key(), err)
	}
}

// noteStartup records, once per pod, the time from seeing the pod bound to
// its first process running, in the harness log and as an annotation.
func (p *execPod) noteStartup(at time.Time) {
	p.mu.Lock()
	if p.startupSent {
		p.mu.Unlock()
		return
	}
	p.startupSent = true
	p.mu.Unlock()
	d := at.Sub(p.observed)
	fmt.Fprintf(logOut, "testcluster: exec pod %s: first process started %.1fms after the pod was seen bound\n", p.key(), float64(d.Microseconds())/1000)
	go func() {
		patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{execStartupKey: d.String()}}})
		_, err := p.k.cs.CoreV1().Pods(p.ns).Patch(p.ctx, p.name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
		if err != nil && !apierrors.IsNotFound(err) && p.ctx.Err() == nil {
			warnf("exec pod %s: %v", p.key(), err)
		}
	}()
}
