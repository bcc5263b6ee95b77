package main

// execconfig.go decides which pods run as real processes and what their
// images mean on this machine. An image is mapped to a local "image config"
// (entrypoint, cmd, PATH directories, env, working directory, user), the part
// of an OCI image config a process needs. Mappings come from the file given
// with --exec-config and from the ConfigMap kube-system/testcluster-exec (key
// config.yaml, same format), which tests may create or change at any time;
// the ConfigMap's mappings are consulted first.

import (
	"context"
	"fmt"
	"os"
	"path"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"sigs.k8s.io/yaml"
)

const (
	execAnnotation     = fatePrefix + "exec"
	execConfigMapNS    = "kube-system"
	execConfigMapName  = "testcluster-exec"
	execConfigMapKey   = "config.yaml"
	defaultExecMaxPods = 16
)

// imageMapping is what an image means locally.
type imageMapping struct {
	// Image is an image reference or a path.Match pattern ("*/worker:*").
	Image      string            `json:"image"`
	Entrypoint []string          `json:"entrypoint,omitempty"`
	Cmd        []string          `json:"cmd,omitempty"`
	Path       []string          `json:"path,omitempty"` // prepended to PATH
	Env        map[string]string `json:"env,omitempty"`
	WorkingDir string            `json:"workingDir,omitempty"`
	User       *int64            `json:"user,omitempty"` // the image's USER (a uid)
	// Expose lists host paths the image provides that sit under a private
	// directory (a Python under /root): they are made reachable in the pod.
	Expose []string `json:"expose,omitempty"`
}

// execFileConfig is the --exec-config file and the ConfigMap's config.yaml.
type execFileConfig struct {
	Images []imageMapping `json:"images"`
}

func parseExecConfig(data []byte) (execFileConfig, error) {
	var c execFileConfig
	if err := yaml.UnmarshalStrict(data, &c); err != nil {
		return c, err
	}
	for i, m := range c.Images {
		if m.Image == "" {
			return c, fmt.Errorf("images[%d]: image is required", i)
		}
		if _, err := path.Match(m.Image, ""); err != nil {
			return c, fmt.Errorf("images[%d]: bad pattern %q: %w", i, m.Image, err)
		}
	}
	return c, nil
}

func loadExecConfig(file string) (execFileConfig, error) {
	if file == "" {
		return execFileConfig{}, nil
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return execFileConfig{}, err
	}
	c, err := parseExecConfig(data)
	if err != nil {
		return c, fmt.Errorf("%s: %w", file, err)
	}
	return c, nil
}

// imageTable holds the file's mappings and the ConfigMap's, which can change.
type imageTable struct {
	mu      sync.RWMutex
	file    []imageMapping
	dynamic []imageMapping
}

func (t *imageTable) lookup(image string) (imageMapping, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	for _, list := range [][]imageMapping{t.dynamic, t.file} {
		for _, m := range list {
			if matchImage(m.Image, image) {
				return m, true
			}
		}
	}
	return imageMapping{}, false
}

func matchImage(pattern, image string) bool {
	if pattern == image {
		return true
	}
	ok, _ := path.Match(pattern, image)
	return ok
}

func (t *imageTable) setDynamic(cm *corev1.ConfigMap) {
	var images []imageMapping
	if cm != nil {
		c, err := parseExecConfig([]byte(cm.Data[execConfigMapKey]))
		if err != nil {
			warnf("ConfigMap %s/%s: %v (ignored)", execConfigMapNS, execConfigMapName, err)
			return
		}
		images = c.Images
	}
	t.mu.Lock()
	t.dynamic = images
	t.mu.Unlock()
}

// watch follows the ConfigMap kube-system/testcluster-exec.
func (t *imageTable) watch(ctx context.Context, factory informers.SharedInformerFactory) error {
	inf := factory.Core().V1().ConfigMaps().Informer()
	ours := func(obj any) (*corev1.ConfigMap, bool) {
		if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = d.Obj
		}
		cm, ok := obj.(*corev1.ConfigMap)
		return cm, ok && cm.Namespace == execConfigMapNS && cm.Name == execConfigMapName
	}
	_, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if cm, ok := ours(obj); ok {
				t.setDynamic(cm)
			}
		},
		UpdateFunc: func(_, obj any) {
			if cm, ok := ours(obj); ok {
				t.setDynamic(cm)
			}
		},
		DeleteFunc: func(obj any) {
			if _, ok := ours(obj); ok {
				t.setDynamic(nil)
			}
		},
	})
	return err
}

// wantsExec: the annotation decides when present ("true" or "false");
// otherwise a pod runs for real when every container's image is mapped.
func (t *imageTable) wantsExec(pod *corev1.Pod) bool {
	switch strings.ToLower(pod.Annotations[execAnnotation]) {
	case "true":
		return true
	case "false":
		return false
	}
	return t.allMapped(pod)
}

func (t *imageTable) allMapped(pod *corev1.Pod) bool {
	if len(pod.Spec.Containers) == 0 {
		return false
	}
	for _, c := range append(append([]corev1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...) {
		if _, ok := t.lookup(c.Image); !ok {
			return false
		}
	}
	return true
}

// refresh reads the ConfigMap now: a test may create it just before its pod,
// and the watch may not have delivered it yet.
func (t *imageTable) refresh(ctx context.Context, cs kubernetes.Interface) {
	cm, err := cs.CoreV1().ConfigMaps(execConfigMapNS).Get(ctx, execConfigMapName, metav1.GetOptions{})
	switch {
	case err == nil:
		t.setDynamic(cm)
	case apierrors.IsNotFound(err):
		t.setDynamic(nil)
	}
}
