// Command testcluster runs a real Kubernetes control plane in one process for
// dataworks' tests: embedded etcd, kube-apiserver, kube-controller-manager,
// kube-scheduler, and kwok's controller and kubelet-like server on fake nodes.
//
// It prints one line starting with "ready" once every component is healthy
// and the fake nodes are Ready, and shuts down cleanly on SIGTERM or SIGINT.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/klog/v2"
)

var logOut io.Writer = os.Stderr

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "testcluster: "+format+"\n", args...)
	os.Exit(1)
}

func warnf(format string, args ...any) {
	fmt.Fprintf(logOut, "testcluster: warning: "+format+"\n", args...)
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fatalf("no free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func waitFor(ctx context.Context, cond func() bool) error {
	deadline := time.Now().Add(120 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}

func writeKubeconfig(path, server string, p *pki) (*rest.Config, error) {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["testcluster"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: p.caPEM}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: p.adminCertPEM, ClientKeyData: p.adminKeyPEM}
	cfg.Contexts["testcluster"] = &clientcmdapi.Context{Cluster: "testcluster", AuthInfo: "admin", Namespace: "default"}
	cfg.CurrentContext = "testcluster"
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return nil, err
	}
	return clientcmd.BuildConfigFromFlags("", path)
}

func main() {
	nodes := flag.Int("nodes", 4, "number of fake nodes")
	kubeconfig := flag.String("kubeconfig", "", "write the admin kubeconfig here (default DATA_DIR/kubeconfig)")
	dataDir := flag.String("data-dir", "", "directory for etcd data, certificates and logs (default: a temporary directory, removed on exit)")
	port := flag.Int("port", 0, "kube-apiserver port on 127.0.0.1 (default: a free port)")
	verbose := flag.Bool("v", false, "write component logs to stderr instead of DATA_DIR/cluster.log")
	var eo execOptions
	flag.StringVar(&eo.configFile, "exec-config", "", "YAML file mapping images to local entrypoints; pods with those images run as real processes (see README)")
	flag.IntVar(&eo.maxPods, "exec-max-pods", defaultExecMaxPods, "at most this many exec pods run at once; the others wait Pending")
	flag.IntVar(&eo.ipBlock, "exec-ip-block", 0, "exec pods get addresses 127.B.x.y with this B (1-254; default random)")
	flag.StringVar(&eo.podinit, "podinit", "", "path of testcluster-podinit (default: beside this binary)")
	flag.Parse()
	if *nodes < 1 {
		fatalf("--nodes must be at least 1")
	}
	started := time.Now()
	removeDir := false
	if *dataDir == "" {
		d, err := os.MkdirTemp("", "testcluster-")
		if err != nil {
			fatalf("%v", err)
		}
		*dataDir, removeDir = d, true
	}
	if err := os.MkdirAll(*dataDir, 0o700); err != nil {
		fatalf("%v", err)
	}
	if *kubeconfig == "" {
		*kubeconfig = filepath.Join(*dataDir, "kubeconfig")
	}
	if !*verbose {
		f, err := os.OpenFile(filepath.Join(*dataDir, "cluster.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			fatalf("%v", err)
		}
		logOut = f
	}
	klogFlags := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(klogFlags)
	_ = klogFlags.Set("logtostderr", "false")
	_ = klogFlags.Set("alsologtostderr", "false")
	_ = klogFlags.Set("stderrthreshold", "FATAL")
	klog.SetOutputBySeverity("INFO", logOut)

	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)

	var wg sync.WaitGroup
	run := func(name string, fn func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(ctx); err != nil && ctx.Err() == nil {
				fatalf("%s: %v", name, err)
			}
		}()
	}

	p, err := newPKI(filepath.Join(*dataDir, "pki"))
	if err != nil {
		fatalf("pki: %v", err)
	}
	etcd, etcdURL, err := startEtcd(filepath.Join(*dataDir, "etcd"), freePort(), freePort())
	if err != nil {
		fatalf("%v", err)
	}
	if *port == 0 {
		*port = freePort()
	}
	server := fmt.Sprintf("https://127.0.0.1:%d", *port)
	run("kube-apiserver", func(ctx context.Context) error {
		return runAPIServer(ctx, apiserverFlags(*dataDir, etcdURL, *port, p))
	})
	cfg, err := writeKubeconfig(*kubeconfig, server, p)
	if err != nil {
		fatalf("kubeconfig: %v", err)
	}
	cs := kubernetes.NewForConfigOrDie(cfg)
	if err := waitFor(ctx, func() bool {
		body, err := cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return err == nil && string(body) == "ok"
	}); err != nil {
		fatalf("kube-apiserver did not become ready: %v", err)
	}
	run("kube-controller-manager", func(ctx context.Context) error { return runControllerManager(ctx, *kubeconfig, p.SAKey) })
	run("kube-scheduler", func(ctx context.Context) error { return runScheduler(ctx, *kubeconfig) })
	if err := createNodes(ctx, cs, *nodes); err != nil {
		fatalf("%v", err)
	}
	if err := runKwok(ctx, *kubeconfig, freePort(), p, logOut); err != nil {
		fatalf("kwok: %v", err)
	}
	if eo.podinit == "" {
		eo.podinit = besideExecutable("testcluster-podinit")
	}
	if _, err := os.Stat(eo.podinit); err != nil {
		warnf("exec pods cannot start: %v", err)
	}
	execKeeper, err := runPodRuntime(ctx, cfg, *dataDir, strconv.Itoa(*port), eo)
	if err != nil {
		fatalf("pod runtime: %v", err)
	}
	if err := waitFor(ctx, func() bool { return clusterReady(ctx, cs, *nodes) }); err != nil {
		fatalf("cluster did not become ready: %v", err)
	}
	fmt.Printf("ready apiserver=%s kubeconfig=%s nodes=%d startup=%.1fs\n", server, *kubeconfig, *nodes, time.Since(started).Seconds())

	sig := <-sigs
	fmt.Fprintf(logOut, "testcluster: %v, shutting down\n", sig)
	execKeeper.shutdown()
	cancel()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		warnf("components did not stop within 20s")
	}
	etcd.Close()
	if removeDir {
		_ = os.RemoveAll(*dataDir)
	}
	fmt.Println("stopped")
}

func besideExecutable(name string) string {
	exe, err := os.Executable()
	if err != nil {
		return name
	}
	return filepath.Join(filepath.Dir(exe), name)
}

// clusterReady: every fake node Ready and untainted by the lifecycle
// controller, and the default ServiceAccount present (pods need it).
func clusterReady(ctx context.Context, cs kubernetes.Interface, want int) bool {
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil || len(nodes.Items) < want {
		return false
	}
	for _, n := range nodes.Items {
		ready := false
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				ready = true
			}
		}
		for _, t := range n.Spec.Taints {
			if t.Key == corev1.TaintNodeNotReady || t.Key == corev1.TaintNodeUnreachable {
				ready = false
			}
		}
		if !ready {
			return false
		}
	}
	_, err = cs.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
	return err == nil
}
