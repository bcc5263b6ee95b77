package main

// podruntime.go wires the harness's stand-ins for kubelets to one informer
// factory: each pod bound to a fake node is handed, once and for good, either
// to the fate keeper (painted pods, fate.go) or to the exec keeper (real
// processes, exec.go); the volume provisioner (provisioner.go) serves claims
// of both.

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	kwokclient "sigs.k8s.io/kwok/pkg/client/clientset/versioned"
)

type podRuntime struct {
	fate *fateKeeper
	exec *execKeeper

	mu      sync.Mutex
	decided map[types.UID]bool // true: exec pod
}

// dispatch decides once per pod who runs it.
func (r *podRuntime) dispatch(ctx context.Context, pod *corev1.Pod) {
	if pod.Spec.NodeName == "" {
		return
	}
	r.mu.Lock()
	isExec, ok := r.decided[pod.UID]
	if !ok {
		isExec = r.exec.wants(ctx, pod)
		r.decided[pod.UID] = isExec
	}
	r.mu.Unlock()
	if isExec {
		r.exec.observe(pod)
	} else {
		r.fate.observe(ctx, pod)
	}
}

func (r *podRuntime) deleted(obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	r.mu.Lock()
	isExec := r.decided[pod.UID]
	delete(r.decided, pod.UID)
	r.mu.Unlock()
	if isExec {
		r.exec.forget(pod)
	}
}

// runPodRuntime starts the keepers and the provisioner; it returns the exec
// keeper, whose shutdown kills every exec process.
func runPodRuntime(ctx context.Context, cfg *rest.Config, dataDir, apiPort string, opts execOptions) (*execKeeper, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = 1000, 2000
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	kc, err := kwokclient.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	file, err := loadExecConfig(opts.configFile)
	if err != nil {
		return nil, fmt.Errorf("exec config: %w", err)
	}
	images := &imageTable{file: file.Images}
	logDir := filepath.Join(dataDir, "pod-logs")
	ex := newExecKeeper(cs, kc, images, opts, dataDir, logDir, "127.0.0.1", apiPort)
	switch {
	case ex.cg.enforced() && ex.cg.v2:
		fmt.Fprintf(logOut, "testcluster: exec pods: CPU and memory limits enforced with cgroup v2 (%s)\n", ex.cg.memRoot)
	case ex.cg.enforced():
		fmt.Fprintf(logOut, "testcluster: exec pods: CPU and memory limits enforced with cgroup v1 (%s)\n", ex.cg.memRoot)
	default:
		warnf("exec pods: CPU and memory limits not enforced: %s", ex.cg.disabled)
	}
	r := &podRuntime{fate: newFateKeeper(cs, kc, logDir), exec: ex, decided: map[types.UID]bool{}}

	factory := informers.NewSharedInformerFactory(cs, 0)
	ex.services = factory.Core().V1().Services().Lister()
	ex.cms = factory.Core().V1().ConfigMaps().Lister()
	ex.secrets = factory.Core().V1().Secrets().Lister()
	if err := images.watch(ctx, factory); err != nil {
		return nil, err
	}
	dirty := func(any) { ex.markDirty() }
	if _, err := factory.Core().V1().Services().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: dirty, UpdateFunc: func(_, o any) { dirty(o) }, DeleteFunc: dirty,
	}); err != nil {
		return nil, err
	}
	handle := func(obj any) {
		if pod, ok := obj.(*corev1.Pod); ok {
			r.dispatch(ctx, pod)
		}
	}
	if _, err := factory.Core().V1().Pods().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    handle,
		UpdateFunc: func(_, obj any) { handle(obj) },
		DeleteFunc: r.deleted,
	}); err != nil {
		return nil, err
	}
	if err := runProvisioner(ctx, cs, factory, filepath.Join(dataDir, "volumes")); err != nil {
		return nil, err
	}
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	go ex.hostsLoop(ctx)
	return ex, nil
}
