package main

// kwok.go registers the fake nodes and runs kwok in-process: its controller
// (node heartbeats and leases, pod lifecycles from the stages in stages/) and
// its kubelet-like server, which answers the API server's pods/log requests.

import (
	"context"
	"embed"
	"fmt"
	"io"
	"path"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/clock"

	nodefast "sigs.k8s.io/kwok/kustomize/stage/node/fast"
	nodelease "sigs.k8s.io/kwok/kustomize/stage/node/heartbeat-with-lease"
	"sigs.k8s.io/kwok/pkg/apis/internalversion"
	"sigs.k8s.io/kwok/pkg/apis/v1alpha1"
	kwokclient "sigs.k8s.io/kwok/pkg/client/clientset/versioned"
	"sigs.k8s.io/kwok/pkg/config"
	"sigs.k8s.io/kwok/pkg/kwok/controllers"
	"sigs.k8s.io/kwok/pkg/kwok/server"
	kwoklog "sigs.k8s.io/kwok/pkg/log"
	"sigs.k8s.io/kwok/pkg/utils/client"
)

//go:embed stages/*.yaml
var stageFiles embed.FS

var workloadTypes = []string{"network", "compute", "memory", "storage"}

const (
	gpuResource = "nvidia.com/gpu"
	fakeNodeKey = "kwok.x-k8s.io/node"
)

// fakeNode describes node i (0-based) of n. The last node carries GPUs and a
// matching NoSchedule taint, so that tolerations are really exercised.
func fakeNode(i, n int) *corev1.Node {
	name := fmt.Sprintf("worker-%02d", i+1)
	alloc := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("16"),
		corev1.ResourceMemory: resource.MustParse("64Gi"),
		corev1.ResourcePods:   resource.MustParse("110"),
	}
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Annotations: map[string]string{fakeNodeKey: "fake", "node.alpha.kubernetes.io/ttl": "0"},
			Labels: map[string]string{
				"kubernetes.io/hostname": name,
				"kubernetes.io/os":       "linux",
				"kubernetes.io/arch":     "amd64",
				"kubernetes.io/role":     "agent",
				"type":                   "kwok",
				"workload-type":          workloadTypes[i%len(workloadTypes)],
			},
		},
		// Registered like a kubelet would: kwok's server answers for every
		// node on 127.0.0.1, and the API server reaches it by InternalIP.
		Status: corev1.NodeStatus{
			Allocatable: alloc, Capacity: alloc.DeepCopy(),
			Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}, {Type: corev1.NodeHostName, Address: name}},
		},
	}
	if i == n-1 {
		node.Labels["accelerator"] = "nvidia"
		gpus := resource.MustParse("4")
		node.Status.Allocatable[gpuResource] = gpus
		node.Status.Capacity[gpuResource] = gpus
		node.Spec.Taints = []corev1.Taint{{Key: gpuResource, Value: "present", Effect: corev1.TaintEffectNoSchedule}}
	}
	return node
}

func createNodes(ctx context.Context, cs kubernetes.Interface, n int) error {
	for i := 0; i < n; i++ {
		node := fakeNode(i, n)
		status := node.Status
		created, err := cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("create node %s: %w", node.Name, err)
		}
		// Controllers may touch the new node first: retry on conflict.
		err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
			created.Status = status
			_, err := cs.CoreV1().Nodes().UpdateStatus(ctx, created, metav1.UpdateOptions{})
			if apierrors.IsConflict(err) {
				if latest, gerr := cs.CoreV1().Nodes().Get(ctx, node.Name, metav1.GetOptions{}); gerr == nil {
					created = latest
				}
			}
			return err
		})
		if err != nil {
			return fmt.Errorf("set capacity of node %s: %w", node.Name, err)
		}
	}
	return nil
}

func loadStages() (map[internalversion.StageResourceRef][]*internalversion.Stage, error) {
	raws := []string{nodefast.DefaultNodeInit, nodelease.DefaultNodeHeartbeatWithLease}
	entries, err := stageFiles.ReadDir("stages")
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		b, err := stageFiles.ReadFile(path.Join("stages", e.Name()))
		if err != nil {
			return nil, err
		}
		raws = append(raws, string(b))
	}
	out := map[internalversion.StageResourceRef][]*internalversion.Stage{}
	for _, raw := range raws {
		st, err := config.UnmarshalWithType[*internalversion.Stage](raw)
		if err != nil {
			return nil, fmt.Errorf("stage: %w", err)
		}
		out[st.Spec.ResourceRef] = append(out[st.Spec.ResourceRef], st)
	}
	return out, nil
}

// installLogsCRD registers kwok's Logs kind, through which the harness tells
// kwok's server which file holds each pod's log. Only the harness uses it.
func installLogsCRD(ctx context.Context, cfg *rest.Config) error {
	cs, err := apiextensionsclient.NewForConfig(cfg)
	if err != nil {
		return err
	}
	preserve := true
	crd := &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "logs." + v1alpha1.GroupVersion.Group},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: v1alpha1.GroupVersion.Group,
			Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: "logs", Singular: "logs", Kind: v1alpha1.LogsKind, ListKind: v1alpha1.LogsKind + "List"},
			Scope: apiextensionsv1.NamespaceScoped,
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
				Name: v1alpha1.GroupVersion.Version, Served: true, Storage: true,
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
					Type: "object", XPreserveUnknownFields: &preserve,
				}},
				Subresources: &apiextensionsv1.CustomResourceSubresources{Status: &apiextensionsv1.CustomResourceSubresourceStatus{}},
			}},
		},
	}
	if _, err := cs.ApiextensionsV1().CustomResourceDefinitions().Create(ctx, crd, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("install kwok Logs CRD: %w", err)
	}
	return waitFor(ctx, func() bool {
		got, err := cs.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, crd.Name, metav1.GetOptions{})
		if err != nil {
			return false
		}
		for _, c := range got.Status.Conditions {
			if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
				return true
			}
		}
		return false
	})
}

// runKwok starts kwok's controller and server; it returns once both run.
// nodeLeaseSeconds is each fake node's lease duration, a kubelet's default.
const nodeLeaseSeconds = 40

func runKwok(ctx context.Context, kubeconfig string, nodePort int, p *pki, logOut io.Writer) error {
	ctx = kwoklog.NewContext(ctx, kwoklog.NewLogger(logOut, kwoklog.LevelWarn))
	stages, err := loadStages()
	if err != nil {
		return err
	}
	cs, err := client.NewClientset("", kubeconfig)
	if err != nil {
		return err
	}
	restConfig, err := cs.ToRESTConfig()
	if err != nil {
		return err
	}
	restConfig.QPS, restConfig.Burst = 1000, 2000
	if err := installLogsCRD(ctx, restConfig); err != nil {
		return err
	}
	dynamicClient, err := cs.ToDynamicClient()
	if err != nil {
		return err
	}
	restMapper, err := cs.ToRESTMapper()
	if err != nil {
		return err
	}
	restClient, err := rest.RESTClientFor(restConfig)
	if err != nil {
		return err
	}
	typed, err := kubernetes.NewForConfig(restConfig)
	if err != nil {
		return err
	}
	typedKwok, err := kwokclient.NewForConfig(restConfig)
	if err != nil {
		return err
	}
	opts := config.GetKwokConfiguration(ctx).Options
	ctr, err := controllers.NewController(controllers.Config{
		Clock:                             clock.RealClock{},
		DynamicClient:                     dynamicClient,
		RESTClient:                        restClient,
		RESTMapper:                        restMapper,
		ImpersonatingDynamicClient:        cs.ToImpersonatingDynamicClient(),
		ImpersonatingTypedClient:          cs.ToImpersonatingTypedClient(),
		TypedClient:                       typed,
		TypedKwokClient:                   typedKwok,
		ManageNodesWithAnnotationSelector: fakeNodeKey + "=fake",
		CIDR:                              opts.CIDR,
		NodeIP:                            "127.0.0.1",
		NodePort:                          nodePort,
		LocalStages:                       stages,
		PodPlayStageParallelism:           opts.PodPlayStageParallelism,
		NodePlayStageParallelism:          opts.NodePlayStageParallelism,
		// A kubelet's lease (40 s, renewed every 10 s). kwok's defaults leave it 0 when kwok
		// runs embedded: with no lease, the node lifecycle controller found every node silent
		// 60 s after its last status write, and marked all of its pods not ready.
		NodeLeaseDurationSeconds:  nodeLeaseSeconds,
		NodeLeaseParallelism:      opts.NodeLeaseParallelism,
		PodsOnNodeSyncParallelism: opts.PodsOnNodeSyncParallelism,
		ID:                        "dataworks-testcluster",
	})
	if err != nil {
		return fmt.Errorf("kwok controller: %w", err)
	}
	if err := ctr.Start(ctx); err != nil {
		return fmt.Errorf("kwok controller start: %w", err)
	}
	svc, err := server.NewServer(server.Config{
		TypedKwokClient: typedKwok,
		EnableCRDs:      []string{v1alpha1.LogsKind},
		DataSource:      ctr,
		NodeCacheGetter: ctr.GetNodeCache(),
		PodCacheGetter:  ctr.GetPodCache(),
	})
	if err != nil {
		return fmt.Errorf("kwok server: %w", err)
	}
	svc.InstallHealthz()
	svc.InstallDebuggingHandlers()
	if err := svc.InstallCRD(ctx); err != nil {
		return fmt.Errorf("kwok server CRDs: %w", err)
	}
	go func() {
		addr := fmt.Sprintf("127.0.0.1:%d", nodePort)
		if err := svc.Run(ctx, addr, p.KubeletCert, p.KubeletKey); err != nil && ctx.Err() == nil {
			fatalf("kwok server: %v", err)
		}
	}()
	return nil
}
