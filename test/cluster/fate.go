package main

// fate.go plays the part of the container runtime. For each pod bound to a
// fake node it decides the pod's outcome from the pod's annotations (see the
// contract in README.md), writes the container log the pod "prints" in CRI
// format, registers that file with kwok's log server, and labels the pod with
// its outcome so that kwok's stages (stages/*.yaml) run the pod to that end.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"sigs.k8s.io/kwok/pkg/apis/v1alpha1"
	kwokclient "sigs.k8s.io/kwok/pkg/client/clientset/versioned"
)

const (
	fatePrefix      = "fate.testcluster.dataworks.io/"
	outcomeLabel    = fatePrefix + "outcome"
	attemptKey      = fatePrefix + "attempt"
	terminationKey  = fatePrefix + "termination-message"
	completionIndex = "batch.kubernetes.io/job-completion-index"
)

// fate is what one pod will do.
type fate struct {
	Outcome  string // succeed, fail or run
	Attempt  int
	Lines    []string
	Interval time.Duration
	Message  string // the termination message its container leaves, placeholders filled
}

// decideFate is pure: the pod's annotations and its attempt number give its fate.
func decideFate(pod *corev1.Pod, attempt int) fate {
	a := pod.Annotations
	index := a[completionIndex]
	f := fate{Outcome: "run", Attempt: attempt}
	if isJobPod(pod) {
		f.Outcome = "succeed"
	}
	failing := a[fatePrefix+"outcome"] == "fail"
	if n, err := strconv.Atoi(a[fatePrefix+"fail-attempts"]); err == nil {
		failing = attempt <= n
	}
	if sel, ok := a[fatePrefix+"fail-if-label"]; ok {
		k, v, _ := strings.Cut(sel, "=")
		if _, hasAttempts := a[fatePrefix+"fail-attempts"]; hasAttempts {
			failing = failing && pod.Labels[k] == v // those attempts of the labelled pods
		} else {
			failing = pod.Labels[k] == v
		}
	}
	if idx := a[fatePrefix+"fail-indexes"]; idx != "" {
		listed := false
		for _, s := range strings.Split(idx, ",") {
			if strings.TrimSpace(s) == index {
				listed = true
			}
		}
		_, hasAttempts := a[fatePrefix+"fail-attempts"]
		_, hasLabel := a[fatePrefix+"fail-if-label"]
		if !hasAttempts && !hasLabel && a[fatePrefix+"outcome"] != "fail" {
			failing = true // alone: those indexes always fail
		}
		failing = failing && listed // else: those indexes of the attempts or labelled pods
	}
	switch {
	case failing:
		f.Outcome = "fail"
	case a[fatePrefix+"outcome"] == "run" || a[fatePrefix+"outcome"] == "succeed":
		f.Outcome = a[fatePrefix+"outcome"]
	}
	r := strings.NewReplacer("{index}", index, "{attempt}", strconv.Itoa(attempt), "{pod}", pod.Name)
	if logs, ok := a[fatePrefix+"logs"]; ok {
		for _, line := range strings.Split(strings.TrimRight(logs, "\n"), "\n") {
			f.Lines = append(f.Lines, r.Replace(line))
		}
	}
	f.Message = r.Replace(a[fatePrefix+"message"])
	if d, err := time.ParseDuration(a[fatePrefix+"log-interval"]); err == nil {
		f.Interval = d
	}
	return f
}

func isJobPod(pod *corev1.Pod) bool {
	for _, o := range pod.OwnerReferences {
		if o.Kind == "Job" && o.Controller != nil && *o.Controller {
			return true
		}
	}
	return false
}

func jobKey(pod *corev1.Pod) string {
	for _, o := range pod.OwnerReferences {
		if o.Kind == "Job" {
			return string(o.UID) + "/" + pod.Annotations[completionIndex]
		}
	}
	return string(pod.UID)
}

type fateKeeper struct {
	cs       kubernetes.Interface
	kwok     kwokclient.Interface
	logDir   string
	mu       sync.Mutex
	attempts map[string]int     // job UID/index -> pods seen
	seen     map[types.UID]bool // pods already given a fate
	sem      chan struct{}
}

func newFateKeeper(cs kubernetes.Interface, kc kwokclient.Interface, logDir string) *fateKeeper {
	return &fateKeeper{cs: cs, kwok: kc, logDir: logDir, attempts: map[string]int{}, seen: map[types.UID]bool{}, sem: make(chan struct{}, 32)}
}

func (k *fateKeeper) observe(ctx context.Context, pod *corev1.Pod) {
	if pod.Spec.NodeName == "" || pod.DeletionTimestamp != nil || pod.Labels[outcomeLabel] != "" {
		return
	}
	k.mu.Lock()
	if k.seen[pod.UID] {
		k.mu.Unlock()
		return
	}
	k.seen[pod.UID] = true
	key := jobKey(pod)
	k.attempts[key]++
	f := decideFate(pod, k.attempts[key])
	k.mu.Unlock()
	pod = pod.DeepCopy()
	go func() {
		k.sem <- struct{}{}
		defer func() { <-k.sem }()
		if err := k.apply(ctx, pod, f); err != nil && ctx.Err() == nil && !apierrors.IsNotFound(err) {
			warnf("pod %s/%s: %v", pod.Namespace, pod.Name, err)
		}
	}()
}

func criLine(t time.Time, line string) string {
	return t.UTC().Format(time.RFC3339Nano) + " stdout F " + line + "\n"
}

func (k *fateKeeper) apply(ctx context.Context, pod *corev1.Pod, f fate) error {
	dir := filepath.Join(k.logDir, pod.Namespace)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	file := filepath.Join(dir, fmt.Sprintf("%s_%s.log", pod.Name, pod.UID))
	var first strings.Builder
	now := time.Now()
	rest := f.Lines
	if f.Interval == 0 {
		for _, l := range f.Lines {
			first.WriteString(criLine(now, l))
		}
		rest = nil
	}
	if err := os.WriteFile(file, []byte(first.String()), 0o644); err != nil {
		return err
	}
	follow := true
	controller := false
	logs := &v1alpha1.Logs{
		ObjectMeta: metav1.ObjectMeta{
			Name: pod.Name, Namespace: pod.Namespace,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Pod", Name: pod.Name, UID: pod.UID, Controller: &controller}},
		},
		Spec: v1alpha1.LogsSpec{Logs: []v1alpha1.Log{{LogsFile: &file, Follow: &follow}}},
	}
	if _, err := k.kwok.KwokV1alpha1().Logs(pod.Namespace).Create(ctx, logs, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("register log: %w", err)
	}
	// kwok's log server learns of the Logs object through a watch; give it a
	// moment so the log is served before the pod can run.
	time.Sleep(50 * time.Millisecond)
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{
		"labels":      map[string]string{outcomeLabel: f.Outcome},
		"annotations": map[string]string{attemptKey: strconv.Itoa(f.Attempt), terminationKey: f.Message},
	}})
	if _, err := k.cs.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("set outcome: %w", err)
	}
	if len(rest) > 0 {
		go appendLines(ctx, file, rest, f.Interval)
	}
	return nil
}

func appendLines(ctx context.Context, file string, lines []string, interval time.Duration) {
	fh, err := os.OpenFile(file, os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return
	}
	defer fh.Close()
	for _, l := range lines {
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
		if _, err := fh.WriteString(criLine(time.Now(), l)); err != nil {
			return
		}
	}
}
