package main

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

type fakeObjects struct {
	cms     map[string]*corev1.ConfigMap
	secrets map[string]*corev1.Secret
}

func (f fakeObjects) configMap(_, name string) (*corev1.ConfigMap, error) {
	if cm, ok := f.cms[name]; ok {
		return cm, nil
	}
	return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "configmaps"}, name)
}

func (f fakeObjects) secret(_, name string) (*corev1.Secret, error) {
	if s, ok := f.secrets[name]; ok {
		return s, nil
	}
	return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "secrets"}, name)
}

func testPod() *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: "w-0", Namespace: "ns", UID: "u1",
			Labels:      map[string]string{"app": "w"},
			Annotations: map[string]string{"batch.kubernetes.io/job-completion-index": "2"},
		},
		Spec: corev1.PodSpec{NodeName: "worker-01", ServiceAccountName: "sa"},
	}
}

func TestContainerEnvResolvesLikeTheKubelet(t *testing.T) {
	optional := true
	objs := fakeObjects{
		cms:     map[string]*corev1.ConfigMap{"cfg": {Data: map[string]string{"MODE": "fast", "LEVEL": "3"}}},
		secrets: map[string]*corev1.Secret{"creds": {Data: map[string][]byte{"password": []byte("s3cret")}}},
	}
	c := &corev1.Container{
		Name:    "main",
		EnvFrom: []corev1.EnvFromSource{{Prefix: "CFG_", ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}}},
		Env: []corev1.EnvVar{
			{Name: "JOB_COMPLETION_INDEX", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.annotations['batch.kubernetes.io/job-completion-index']"}}},
			{Name: "MY_INDEX", Value: "$(JOB_COMPLETION_INDEX)"},
			{Name: "ESCAPED", Value: "$$(MY_INDEX)"},
			{Name: "UNKNOWN", Value: "$(NOPE)"},
			{Name: "POD_IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
			{Name: "APP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels['app']"}}},
			{Name: "PASSWORD", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "creds"}, Key: "password"}}},
			{Name: "MODE", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}, Key: "MODE"}}},
			{Name: "MAYBE", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "absent"}, Key: "x", Optional: &optional}}},
			{Name: "MEM", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.memory", Divisor: resource.MustParse("1Mi")}}},
			{Name: "API", Value: "$(KUBERNETES_SERVICE_HOST):$(KUBERNETES_SERVICE_PORT)"},
		},
		Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")}},
	}
	pod := testPod()
	pod.Spec.Containers = []corev1.Container{*c}
	ec := envContext{pod: pod, podIP: "127.3.0.2", apiHost: "127.0.0.1", apiPort: "6443", allocated: nodeAllocatable()}
	env, err := containerEnv(ec, c, objs)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"CFG_MODE": "fast", "CFG_LEVEL": "3", "JOB_COMPLETION_INDEX": "2", "MY_INDEX": "2",
		"ESCAPED": "$(MY_INDEX)", "UNKNOWN": "$(NOPE)", "POD_IP": "127.3.0.2", "APP": "w",
		"PASSWORD": "s3cret", "MODE": "fast", "MEM": "64", "API": "127.0.0.1:6443",
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("%s = %q, want %q", k, env[k], v)
		}
	}
	if _, ok := env["MAYBE"]; ok {
		t.Errorf("optional missing ConfigMap key must be left out")
	}
}

func TestContainerEnvMissingSecretIsAConfigError(t *testing.T) {
	c := &corev1.Container{Name: "main", Env: []corev1.EnvVar{{Name: "P", ValueFrom: &corev1.EnvVarSource{
		SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "nope"}, Key: "k"},
	}}}}
	_, err := containerEnv(envContext{pod: testPod()}, c, fakeObjects{})
	var ce *configError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), `secret "nope" not found`) {
		t.Fatalf("err = %v, want a configError about the secret", err)
	}
}

func TestCommandLine(t *testing.T) {
	img := imageMapping{Entrypoint: []string{"python", "-m", "app"}, Cmd: []string{"--serve"}}
	env := map[string]string{"N": "3"}
	cases := []struct {
		name string
		c    corev1.Container
		want []string
	}{
		{"image defaults", corev1.Container{}, []string{"python", "-m", "app", "--serve"}},
		{"args replace cmd", corev1.Container{Args: []string{"--n=$(N)"}}, []string{"python", "-m", "app", "--n=3"}},
		{"command replaces both", corev1.Container{Command: []string{"sh", "-c", "echo $(N)"}}, []string{"sh", "-c", "echo 3"}},
	}
	for _, c := range cases {
		got, err := commandLine(img, &c.c, env)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: got %q, %v; want %q", c.name, got, err, c.want)
		}
	}
	if _, err := commandLine(imageMapping{}, &corev1.Container{Name: "x", Image: "busybox"}, env); err == nil {
		t.Error("no command and no entrypoint must be an error")
	}
}

func TestProcessEnvPutsTheImagePathFirst(t *testing.T) {
	env := processEnv(imageMapping{Path: []string{"/venv/bin"}, Env: map[string]string{"A": "image"}}, "w-0", map[string]string{"A": "pod"})
	want := []string{"A=pod", "HOME=/", "HOSTNAME=w-0", "PATH=/venv/bin:" + defaultPath}
	if !reflect.DeepEqual(env, want) {
		t.Fatalf("env = %q, want %q", env, want)
	}
}

func TestExecConfigAndImageMatching(t *testing.T) {
	c, err := parseExecConfig([]byte("images:\n- image: 'ghcr.io/dataworks/worker:*'\n  path: [/venv/bin]\n"))
	if err != nil {
		t.Fatal(err)
	}
	table := &imageTable{file: c.Images}
	pod := testPod()
	pod.Spec.Containers = []corev1.Container{{Name: "a", Image: "ghcr.io/dataworks/worker:1.2"}}
	if !table.wantsExec(pod) {
		t.Error("a mapped image must run for real")
	}
	pod.Annotations[execAnnotation] = "false"
	if table.wantsExec(pod) {
		t.Error(`exec: "false" must opt out`)
	}
	pod.Annotations[execAnnotation] = "true"
	pod.Spec.Containers[0].Image = "busybox:1.36"
	if !table.wantsExec(pod) {
		t.Error(`exec: "true" must opt in whatever the image`)
	}
	delete(pod.Annotations, execAnnotation)
	if table.wantsExec(pod) {
		t.Error("an unmapped image is painted")
	}
	if _, err := parseExecConfig([]byte("images:\n- entrypoint: [x]\n")); err == nil {
		t.Error("a mapping without image must be rejected")
	}
	if _, err := parseExecConfig([]byte("imagez: []\n")); err == nil {
		t.Error("unknown fields must be rejected")
	}
}

func TestHostsFile(t *testing.T) {
	self := peer{namespace: "ns", hostname: "w-0", subdomain: "ranks", ip: "127.5.0.2", labels: map[string]string{"app": "w"}}
	other := peer{namespace: "ns", hostname: "w-1", subdomain: "ranks", ip: "127.5.0.3", labels: map[string]string{"app": "w"}}
	elsewhere := peer{namespace: "other", hostname: "db", subdomain: "d", ip: "127.5.0.4", labels: map[string]string{"app": "w"}}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "ranks", Namespace: "ns"}, Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "w"}}}
	got := hostsFile(self, []peer{self, other, elsewhere}, []*corev1.Service{svc})
	for _, line := range []string{
		"127.5.0.2\tw-0.ranks.ns.svc.cluster.local\tw-0",
		"127.5.0.3\tw-1.ranks.ns.svc.cluster.local\tw-1.ranks.ns.svc\tw-1.ranks.ns\tw-1.ranks",
		"127.5.0.4\tdb.d.other.svc.cluster.local\tdb.d.other.svc\tdb.d.other\n",
		"127.5.0.2\tranks.ns.svc.cluster.local\tranks.ns.svc\tranks.ns\tranks",
		"127.5.0.3\tranks.ns.svc.cluster.local",
	} {
		if !strings.Contains(got, line) {
			t.Errorf("hosts file lacks %q:\n%s", line, got)
		}
	}
	if strings.Contains(got, "127.5.0.4\tranks") {
		t.Errorf("a Service selects pods of its own namespace only:\n%s", got)
	}
}

func TestIPPoolHandsOutDistinctLoopbackAddresses(t *testing.T) {
	p := newIPPool(7)
	seen := map[string]bool{}
	for i := 0; i < 600; i++ {
		ip, err := p.get()
		if err != nil {
			t.Fatal(err)
		}
		if seen[ip] || !strings.HasPrefix(ip, "127.7.") || strings.HasSuffix(ip, ".0") || strings.HasSuffix(ip, ".255") {
			t.Fatalf("bad or repeated address %s", ip)
		}
		seen[ip] = true
	}
	p.put("127.7.0.2")
	if len(p.used) != 599 {
		t.Fatalf("put must free the address")
	}
}

func TestNiceForCPULimits(t *testing.T) {
	c := &corev1.Container{Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m")}}}
	if n := niceFor(c, false); n != 5 {
		t.Fatalf("nice = %d, want 5", n)
	}
	if n := niceFor(c, true); n != 0 {
		t.Fatalf("nice = %d with a cgroup quota, want 0", n)
	}
	c.Resources.Limits[corev1.ResourceCPU] = resource.MustParse("2")
	if n := niceFor(c, false); n != 0 {
		t.Fatalf("nice = %d, want 0", n)
	}
}
