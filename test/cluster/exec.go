package main

// exec.go runs exec pods: pods that opt in (annotation
// fate.testcluster.dataworks.io/exec: "true", or every image mapped in the
// exec configuration, see execconfig.go) have their containers run as real
// processes on this machine instead of playing a painted fate. The exec keeper
// is the kubelet of those pods: it takes an exec slot (at most --exec-max-pods
// at once), gives the pod a loopback IP, prepares its volumes, runs its init
// containers then its containers (execcontainer.go), writes the pod's status
// (execstatus.go), and on deletion sends SIGTERM, then SIGKILL after the grace
// period, and finally deletes the pod as a kubelet confirms a deletion.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	listersv1 "k8s.io/client-go/listers/core/v1"

	"sigs.k8s.io/kwok/pkg/apis/v1alpha1"
	kwokclient "sigs.k8s.io/kwok/pkg/client/clientset/versioned"
)

const (
	execOutcome     = "exec"
	execStartupKey  = fatePrefix + "exec-startup"
	execSlotMessage = "testcluster: waiting for an exec slot (%d exec pods running, --exec-max-pods=%d)"
)

// execOptions are the harness flags about exec pods.
type execOptions struct {
	configFile string
	maxPods    int
	podinit    string // path of testcluster-podinit
	ipBlock    int
}

type execKeeper struct {
	cs      kubernetes.Interface
	kwok    kwokclient.Interface
	images  *imageTable
	opts    execOptions
	root    string // per-pod directories
	logDir  string
	apiHost string
	apiPort string
	ips     *ipPool
	spawn   *spawner
	rootful bool // running as root: uids can be switched, no user namespace
	cg      *cgroups

	services listersv1.ServiceLister
	cms      listersv1.ConfigMapLister
	secrets  listersv1.SecretLister

	mu      sync.Mutex
	pods    map[types.UID]*execPod
	running int
	waiting []*execPod
	slotCh  chan struct{} // wakes waiters when a slot frees
	dirty   chan struct{} // hosts files need rewriting
	stopped bool
}

func newExecKeeper(cs kubernetes.Interface, kc kwokclient.Interface, images *imageTable, opts execOptions, dataDir, logDir, apiHost, apiPort string) *execKeeper {
	if opts.maxPods <= 0 {
		opts.maxPods = defaultExecMaxPods
	}
	return &execKeeper{
		cs: cs, kwok: kc, images: images, opts: opts,
		root: filepath.Join(dataDir, "exec-pods"), logDir: logDir,
		apiHost: apiHost, apiPort: apiPort,
		ips: newIPPool(opts.ipBlock), spawn: newSpawner(), rootful: os.Geteuid() == 0, cg: setupCgroups(),
		pods: map[types.UID]*execPod{}, slotCh: make(chan struct{}), dirty: make(chan struct{}, 1),
	}
}

// wants reports whether the pod is (or must become) an exec pod.
func (k *execKeeper) wants(ctx context.Context, pod *corev1.Pod) bool {
	if pod.Labels[outcomeLabel] != "" {
		return pod.Labels[outcomeLabel] == execOutcome
	}
	if k.images.wantsExec(pod) {
		return true
	}
	if _, set := pod.Annotations[execAnnotation]; set {
		return false
	}
	k.images.refresh(ctx, k.cs)
	return k.images.allMapped(pod)
}

// observe is called for every add or update of a pod bound to a node.
func (k *execKeeper) observe(pod *corev1.Pod) {
	k.mu.Lock()
	p := k.pods[pod.UID]
	if p == nil {
		if pod.DeletionTimestamp != nil || k.stopped || terminal(pod) {
			k.mu.Unlock()
			return
		}
		p = newExecPod(k, pod)
		k.pods[pod.UID] = p
		k.mu.Unlock()
		go p.run()
		return
	}
	k.mu.Unlock()
	p.update(pod)
}

// forget is called when the pod object is gone: stop at once and clean up.
func (k *execKeeper) forget(pod *corev1.Pod) {
	k.mu.Lock()
	p := k.pods[pod.UID]
	k.mu.Unlock()
	if p != nil {
		p.gone()
	}
}

func terminal(pod *corev1.Pod) bool {
	return pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
}

// acquire waits for an exec slot; onWait is called once if it must wait.
func (k *execKeeper) acquire(ctx context.Context, p *execPod, onWait func(msg string)) bool {
	told := false
	for {
		k.mu.Lock()
		if k.running < k.opts.maxPods && (len(k.waiting) == 0 || k.waiting[0] == p) {
			k.running++
			if len(k.waiting) > 0 && k.waiting[0] == p {
				k.waiting = k.waiting[1:]
			}
			k.mu.Unlock()
			return true
		}
		if !told {
			k.waiting = append(k.waiting, p)
		}
		ch, msg := k.slotCh, fmt.Sprintf(execSlotMessage, k.running, k.opts.maxPods)
		k.mu.Unlock()
		if !told {
			onWait(msg)
			told = true
		}
		select {
		case <-ch:
		case <-ctx.Done():
			k.mu.Lock()
			for i, w := range k.waiting {
				if w == p {
					k.waiting = append(k.waiting[:i], k.waiting[i+1:]...)
					break
				}
			}
			k.wakeLocked()
			k.mu.Unlock()
			return false
		}
	}
}

func (k *execKeeper) isStopped() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.stopped
}

func (k *execKeeper) release() {
	k.mu.Lock()
	k.running--
	k.wakeLocked()
	k.mu.Unlock()
}

func (k *execKeeper) wakeLocked() {
	close(k.slotCh)
	k.slotCh = make(chan struct{})
}

func (k *execKeeper) remove(p *execPod) {
	k.mu.Lock()
	delete(k.pods, p.uid)
	k.mu.Unlock()
}

// markDirty asks for every hosts file to be rewritten.
func (k *execKeeper) markDirty() {
	select {
	case k.dirty <- struct{}{}:
	default:
	}
}

// hostsLoop rewrites hosts files after changes, at most every 50ms.
func (k *execKeeper) hostsLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-k.dirty:
		}
		time.Sleep(50 * time.Millisecond)
		k.rewriteHosts()
	}
}

func (k *execKeeper) rewriteHosts() {
	var services []*corev1.Service
	if k.services != nil {
		services, _ = k.services.List(everything())
	}
	k.mu.Lock()
	var peers []peer
	var pods []*execPod
	for _, p := range k.pods {
		if pr, ok := p.peer(); ok {
			peers = append(peers, pr)
			pods = append(pods, p)
		}
	}
	k.mu.Unlock()
	for i, p := range pods {
		if err := p.writeHosts(hostsFile(peers[i], peers, services)); err != nil {
			warnf("hosts file of %s: %v", p.key(), err)
		}
	}
}

// shutdown kills every exec process (its whole PID namespace dies with its
// init) and waits a little for them to be reaped.
func (k *execKeeper) shutdown() {
	k.mu.Lock()
	k.stopped = true
	pods := make([]*execPod, 0, len(k.pods))
	for _, p := range k.pods {
		pods = append(pods, p)
	}
	k.mu.Unlock()
	for _, p := range pods {
		p.halt()
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, p := range pods {
		p.waitProcs(time.Until(deadline))
	}
	k.cg.cleanup()
}

// --- objects for env and volumes, read from the informers' caches, falling
// back to the API (a pod may be created right after its ConfigMap).

func (k *execKeeper) configMap(ns, name string) (*corev1.ConfigMap, error) {
	if cm, err := k.cms.ConfigMaps(ns).Get(name); err == nil {
		return cm, nil
	}
	return k.cs.CoreV1().ConfigMaps(ns).Get(context.Background(), name, metav1.GetOptions{})
}

func (k *execKeeper) secret(ns, name string) (*corev1.Secret, error) {
	if s, err := k.secrets.Secrets(ns).Get(name); err == nil {
		return s, nil
	}
	return k.cs.CoreV1().Secrets(ns).Get(context.Background(), name, metav1.GetOptions{})
}

// registerLogs tells kwok's log server where each container's log (and its
// previous instance's log) is.
func (k *execKeeper) registerLogs(ctx context.Context, pod *corev1.Pod, files map[string]string) error {
	follow := true
	controller := false
	var logs []v1alpha1.Log
	all := append(append([]corev1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...)
	for _, c := range all {
		cur, prev := files[c.Name], files[c.Name]+".previous"
		logs = append(logs, v1alpha1.Log{Containers: []string{c.Name}, LogsFile: &cur, PreviousLogsFile: &prev, Follow: &follow})
	}
	obj := &v1alpha1.Logs{
		ObjectMeta: metav1.ObjectMeta{
			Name: pod.Name, Namespace: pod.Namespace,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Pod", Name: pod.Name, UID: pod.UID, Controller: &controller}},
		},
		Spec: v1alpha1.LogsSpec{Logs: logs},
	}
	_, err := k.kwok.KwokV1alpha1().Logs(pod.Namespace).Create(ctx, obj, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		old, gerr := k.kwok.KwokV1alpha1().Logs(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
		if gerr != nil {
			return gerr
		}
		old.Spec, old.OwnerReferences = obj.Spec, obj.OwnerReferences
		_, err = k.kwok.KwokV1alpha1().Logs(pod.Namespace).Update(ctx, old, metav1.UpdateOptions{})
	}
	return err
}

// label marks the pod as an exec pod: kwok's stages and the fate keeper leave
// it alone from then on.
func (k *execKeeper) label(ctx context.Context, pod *corev1.Pod) error {
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"labels": map[string]string{outcomeLabel: execOutcome}}})
	_, err := k.cs.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
	return err
}

// spawner starts every process from one OS thread that never exits: a
// parent-death signal fires when the *thread* that forked the child exits,
// so it must not be a thread the Go runtime may retire.
type spawner struct{ reqs chan spawnReq }

type spawnReq struct {
	cmd  *exec.Cmd
	done chan error
}

func newSpawner() *spawner {
	s := &spawner{reqs: make(chan spawnReq)}
	go func() {
		runtime.LockOSThread()
		for r := range s.reqs {
			r.done <- r.cmd.Start()
		}
	}()
	return s
}

func (s *spawner) start(cmd *exec.Cmd) error {
	done := make(chan error, 1)
	s.reqs <- spawnReq{cmd, done}
	return <-done
}

// initAttrs: fresh mount, PID and UTS namespaces (and a user namespace
// mapping root to us when not running as root), own process group, killed
// when the harness dies.
func (k *execKeeper) initAttrs() *syscall.SysProcAttr {
	attr := &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWNS | syscall.CLONE_NEWPID | syscall.CLONE_NEWUTS,
		Setpgid:    true,
		Pdeathsig:  syscall.SIGKILL,
	}
	if !k.rootful {
		attr.Cloneflags |= syscall.CLONE_NEWUSER
		attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Geteuid(), Size: 1}}
		attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}}
	}
	return attr
}
