package main

// execstatus.go keeps an exec pod's status as a kubelet reports it: phase,
// the pod IP, the Initialized / PodReadyToStartContainers / ContainersReady /
// Ready conditions, and one ContainerStatus per container. publish writes the
// whole of it; conditions written by others (PodScheduled, DisruptionTarget)
// are kept.

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
)

func waitingStatus(c corev1.Container, reason, msg string) corev1.ContainerStatus {
	return corev1.ContainerStatus{
		Name: c.Name, Image: c.Image, ImageID: "testcluster-exec://" + c.Image,
		State:   corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: msg}},
		Started: ptrTo(false),
	}
}

func (p *execPod) setStatus(idx int, init bool, fn func(*corev1.ContainerStatus)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if init {
		fn(&p.initStatuses[idx])
	} else {
		fn(&p.statuses[idx])
	}
}

// setAllWaiting: every container not yet started waits for the same reason.
func (p *execPod) setAllWaiting(reason, msg string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, list := range [][]corev1.ContainerStatus{p.initStatuses, p.statuses} {
		for i := range list {
			if list[i].State.Running == nil && list[i].State.Terminated == nil {
				list[i].State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: msg}}
			}
		}
	}
}

type condition struct {
	status         corev1.ConditionStatus
	reason, detail string
}

// conditions computes the kubelet-owned conditions (under p.mu).
func (p *execPod) conditions() map[corev1.PodConditionType]condition {
	out := map[corev1.PodConditionType]condition{}
	yes := func(b bool) corev1.ConditionStatus {
		if b {
			return corev1.ConditionTrue
		}
		return corev1.ConditionFalse
	}
	out[corev1.PodReadyToStartContainers] = condition{status: yes(p.sandbox && !p.finished)}
	init := condition{status: yes(p.initialized || len(p.initStatuses) == 0)}
	if init.status == corev1.ConditionFalse {
		init.reason = "ContainersNotInitialized"
	}
	out[corev1.PodInitialized] = init
	ready := !p.finished
	for _, s := range p.statuses {
		ready = ready && s.Ready
	}
	c := condition{status: yes(ready)}
	switch {
	case p.finished && p.phase == corev1.PodSucceeded:
		c.reason = "PodCompleted"
	case p.finished:
		c.reason = "PodFailed"
	case !ready:
		c.reason = "ContainersNotReady"
	}
	out[corev1.ContainersReady] = c
	out[corev1.PodReady] = c
	return out
}

func (p *execPod) phaseNow() corev1.PodPhase {
	if p.finished {
		return p.phase
	}
	if !p.initialized && len(p.initStatuses) > 0 {
		return corev1.PodPending
	}
	for _, s := range p.statuses {
		if s.State.Running != nil || s.RestartCount > 0 || s.State.Terminated != nil {
			return corev1.PodRunning
		}
	}
	return corev1.PodPending
}

// publish writes the pod's status (serialised, always the latest state).
func (p *execPod) publish() {
	p.publishMu.Lock()
	defer p.publishMu.Unlock()
	p.mu.Lock()
	phase := p.phaseNow()
	conds := p.conditions()
	ip, start := p.ip, p.startTime
	inits := append([]corev1.ContainerStatus(nil), p.initStatuses...)
	mains := append([]corev1.ContainerStatus(nil), p.statuses...)
	for _, list := range [][]corev1.ContainerStatus{inits, mains} {
		for i := range list {
			list[i] = *list[i].DeepCopy()
		}
	}
	p.mu.Unlock()
	pods := p.k.cs.CoreV1().Pods(p.ns)
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := pods.Get(context.Background(), p.name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if cur.UID != p.uid || terminal(cur) {
			return nil
		}
		st := &cur.Status
		st.Phase = phase
		st.HostIP, st.HostIPs = "127.0.0.1", []corev1.HostIP{{IP: "127.0.0.1"}}
		if ip != "" && st.PodIP == "" {
			st.PodIP, st.PodIPs = ip, []corev1.PodIP{{IP: ip}}
		}
		if start != nil && st.StartTime == nil {
			st.StartTime = start
		}
		st.InitContainerStatuses, st.ContainerStatuses = inits, mains
		now := metav1.Now()
		for typ, c := range conds {
			setCondition(st, typ, c, now)
		}
		_, err = pods.UpdateStatus(context.Background(), cur, metav1.UpdateOptions{})
		return err
	})
	if err != nil && !apierrors.IsNotFound(err) {
		warnf("exec pod %s: status: %v", p.key(), err)
	}
}

func setCondition(st *corev1.PodStatus, typ corev1.PodConditionType, c condition, now metav1.Time) {
	for i := range st.Conditions {
		old := &st.Conditions[i]
		if old.Type != typ {
			continue
		}
		if old.Status != c.status {
			old.LastTransitionTime = now
		}
		old.Status, old.Reason, old.Message = c.status, c.reason, c.detail
		return
	}
	st.Conditions = append(st.Conditions, corev1.PodCondition{Type: typ, Status: c.status, Reason: c.reason, Message: c.detail, LastTransitionTime: now})
}
