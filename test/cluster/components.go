package main

// components.go runs kube-controller-manager and kube-scheduler in-process,
// each from its own options struct with a parsed flag list and its Run
// function, all under the one context of the cluster.

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/pflag"
	kcmapp "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	kcmoptions "k8s.io/kubernetes/cmd/kube-controller-manager/app/options"
	schedapp "k8s.io/kubernetes/cmd/kube-scheduler/app"
	schedoptions "k8s.io/kubernetes/cmd/kube-scheduler/app/options"
)

// controllers are the kube-controller-manager controllers the tests rely on.
var kcmControllers = []string{
	"job-controller",
	"garbage-collector-controller",
	"deployment-controller",
	"replicaset-controller",
	"namespace-controller",
	"serviceaccount-controller",
	"ttl-after-finished-controller",
	"pod-garbage-collector-controller",
	"node-lifecycle-controller",
	"taint-eviction-controller",
	"root-ca-certificate-publisher-controller",
	"cronjob-controller",
	"endpointslice-controller",
	"persistentvolume-binder-controller",
	"persistentvolume-protection-controller",
	"persistentvolumeclaim-protection-controller",
	"ephemeral-volume-controller",
}

func runControllerManager(ctx context.Context, kubeconfig, saKey string) error {
	s, err := kcmoptions.NewKubeControllerManagerOptions()
	if err != nil {
		return err
	}
	all, disabled, aliases := kcmapp.KnownControllers(), kcmapp.ControllersDisabledByDefault(), kcmapp.ControllerAliases()
	named := s.Flags(all, disabled, aliases)
	fs := pflag.NewFlagSet("kube-controller-manager", pflag.ContinueOnError)
	for _, f := range named.FlagSets {
		fs.AddFlagSet(f)
	}
	flags := []string{
		"--kubeconfig=" + kubeconfig,
		"--leader-elect=false",
		"--secure-port=0",
		"--controllers=" + strings.Join(kcmControllers, ","),
		"--service-account-private-key-file=" + saKey,
		"--use-service-account-credentials=false",
		// Finished Jobs and their pods are kept; only the garbage collector and
		// ttlSecondsAfterFinished remove them, as on a default cluster.
		"--concurrent-job-syncs=10",
		"--kube-api-qps=1000",
		"--kube-api-burst=2000",
		"--node-monitor-grace-period=60s",
	}
	if err := fs.Parse(flags); err != nil {
		return fmt.Errorf("kube-controller-manager flags: %w", err)
	}
	s.ParsedFlags = &named
	if err := s.ComponentGlobalsRegistry.Set(); err != nil {
		return err
	}
	cfg, err := s.Config(ctx, all, disabled, aliases)
	if err != nil {
		return fmt.Errorf("kube-controller-manager config: %w", err)
	}
	return kcmapp.Run(ctx, cfg.Complete())
}

func runScheduler(ctx context.Context, kubeconfig string) error {
	opts := schedoptions.NewOptions()
	fs := pflag.NewFlagSet("kube-scheduler", pflag.ContinueOnError)
	for _, f := range opts.Flags.FlagSets {
		fs.AddFlagSet(f)
	}
	flags := []string{
		"--kubeconfig=" + kubeconfig,
		"--leader-elect=false",
		"--secure-port=0",
		"--kube-api-qps=1000",
		"--kube-api-burst=2000",
	}
	if err := fs.Parse(flags); err != nil {
		return fmt.Errorf("kube-scheduler flags: %w", err)
	}
	if err := opts.ComponentGlobalsRegistry.Set(); err != nil {
		return err
	}
	cc, sched, err := schedapp.Setup(ctx, opts)
	if err != nil {
		return fmt.Errorf("kube-scheduler setup: %w", err)
	}
	return schedapp.Run(ctx, cc, sched)
}
