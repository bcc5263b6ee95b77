package main

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func jobPod(index string, annotations map[string]string) *corev1.Pod {
	yes := true
	a := map[string]string{}
	for k, v := range annotations {
		a[fatePrefix+k] = v
	}
	if index != "" {
		a[completionIndex] = index
	}
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{
		Name: "p", Annotations: a,
		OwnerReferences: []metav1.OwnerReference{{Kind: "Job", Name: "j", Controller: &yes}},
	}}
}

func labelled(p *corev1.Pod, k, v string) *corev1.Pod {
	p.Labels = map[string]string{k: v}
	return p
}

func TestDecideFate(t *testing.T) {
	bare := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "bare"}}
	cases := []struct {
		name    string
		pod     *corev1.Pod
		attempt int
		want    string
	}{
		{"job pod succeeds by default", jobPod("", nil), 1, "succeed"},
		{"bare pod keeps running", bare, 1, "run"},
		{"explicit fail", jobPod("", map[string]string{"outcome": "fail"}), 3, "fail"},
		{"first attempts fail", jobPod("", map[string]string{"fail-attempts": "2"}), 2, "fail"},
		{"later attempt succeeds", jobPod("", map[string]string{"fail-attempts": "2"}), 3, "succeed"},
		{"listed index fails", jobPod("3", map[string]string{"fail-indexes": "1,3"}), 5, "fail"},
		{"unlisted index succeeds", jobPod("2", map[string]string{"fail-indexes": "1,3"}), 1, "succeed"},
		{"listed index recovers", jobPod("1", map[string]string{"fail-indexes": "1", "fail-attempts": "1"}), 2, "succeed"},
		{"listed index first attempt", jobPod("1", map[string]string{"fail-indexes": "1", "fail-attempts": "1"}), 1, "fail"},
		{"listed index of a labelled pod", labelled(jobPod("1", map[string]string{"fail-indexes": "1", "fail-if-label": "a=1"}), "a", "1"), 1, "fail"},
		{"listed index of an unlabelled pod", labelled(jobPod("1", map[string]string{"fail-indexes": "1", "fail-if-label": "a=1"}), "a", "2"), 1, "succeed"},
		{"unlisted index of a labelled pod", labelled(jobPod("0", map[string]string{"fail-indexes": "1", "fail-if-label": "a=1"}), "a", "1"), 1, "succeed"},
		{"explicit run", jobPod("", map[string]string{"outcome": "run"}), 1, "run"},
		{"label selects failure", labelled(jobPod("", map[string]string{"fail-if-label": "try=1"}), "try", "1"), 1, "fail"},
		{"other label value succeeds", labelled(jobPod("", map[string]string{"fail-if-label": "try=1"}), "try", "2"), 1, "succeed"},
		{"labelled first attempt fails", labelled(jobPod("", map[string]string{"fail-if-label": "step=b", "fail-attempts": "1"}), "step", "b"), 1, "fail"},
		{"labelled later attempt succeeds", labelled(jobPod("", map[string]string{"fail-if-label": "step=b", "fail-attempts": "1"}), "step", "b"), 2, "succeed"},
		{"unlabelled first attempt succeeds", labelled(jobPod("", map[string]string{"fail-if-label": "step=b", "fail-attempts": "1"}), "step", "a"), 1, "succeed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := decideFate(c.pod, c.attempt).Outcome; got != c.want {
				t.Fatalf("outcome = %q, want %q", got, c.want)
			}
		})
	}
}

func TestDecideFateLogPlaceholders(t *testing.T) {
	pod := jobPod("4", map[string]string{"logs": "worker {index} try {attempt}\nPROGRESS: 10.0%\n"})
	got := decideFate(pod, 2).Lines
	want := []string{"worker 4 try 2", "PROGRESS: 10.0%"}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("lines = %q, want %q", got, want)
	}
}

func TestDecideFateMessagePlaceholders(t *testing.T) {
	pod := jobPod("", map[string]string{"message": "rows from {pod} try {attempt}"})
	if got, want := decideFate(pod, 2).Message, "rows from p try 2"; got != want {
		t.Fatalf("message = %q, want %q", got, want)
	}
	if got := decideFate(jobPod("", nil), 1).Message; got != "" {
		t.Fatalf("message = %q, want none", got)
	}
}
