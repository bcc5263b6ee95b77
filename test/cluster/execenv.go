package main

// execenv.go resolves a container's environment and command line the way the
// kubelet does (kubelet_pods.go makeEnvironmentVariables): the API server's
// address, then envFrom, then env in order, where `$(VAR)` refers to what is
// already defined; valueFrom reads fields of the pod, the container's
// resources, ConfigMaps and Secrets. On top come what a runtime adds: the
// image's env and PATH (from the image mapping) and HOSTNAME.

import (
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	resourcehelper "k8s.io/kubernetes/pkg/api/v1/resource"
	"k8s.io/kubernetes/pkg/fieldpath"
	"k8s.io/kubernetes/third_party/forked/golang/expansion"
)

const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// objects reads what valueFrom and envFrom name; the harness reads with its
// admin credentials, as a kubelet reads with its node's.
type objects interface {
	configMap(namespace, name string) (*corev1.ConfigMap, error)
	secret(namespace, name string) (*corev1.Secret, error)
}

// configError is the kubelet's CreateContainerConfigError: the pod waits.
type configError struct{ msg string }

func (e *configError) Error() string { return e.msg }

func configErrorf(format string, args ...any) error {
	return &configError{fmt.Sprintf(format, args...)}
}

// envContext is what the environment may refer to besides the API.
type envContext struct {
	pod       *corev1.Pod
	podIP     string
	apiHost   string
	apiPort   string
	allocated corev1.ResourceList // node allocatable: the default limits
}

func kubeServiceEnv(host, port string) map[string]string {
	url := fmt.Sprintf("tcp://%s:%s", host, port)
	return map[string]string{
		"KUBERNETES_SERVICE_HOST":       host,
		"KUBERNETES_SERVICE_PORT":       port,
		"KUBERNETES_SERVICE_PORT_HTTPS": port,
		"KUBERNETES_PORT":               url,
		"KUBERNETES_PORT_443_TCP":       url,
		"KUBERNETES_PORT_443_TCP_PROTO": "tcp",
		"KUBERNETES_PORT_443_TCP_PORT":  port,
		"KUBERNETES_PORT_443_TCP_ADDR":  host,
	}
}

// containerEnv returns the variables the container's own spec defines
// (service variables, envFrom, env), in the kubelet's order and meaning.
func containerEnv(ec envContext, c *corev1.Container, objs objects) (map[string]string, error) {
	ns := ec.pod.Namespace
	service := kubeServiceEnv(ec.apiHost, ec.apiPort)
	env := map[string]string{}
	for _, from := range c.EnvFrom {
		var data map[string]string
		switch {
		case from.ConfigMapRef != nil:
			optional := from.ConfigMapRef.Optional != nil && *from.ConfigMapRef.Optional
			cm, err := objs.configMap(ns, from.ConfigMapRef.Name)
			if err != nil {
				if apierrors.IsNotFound(err) && optional {
					continue
				}
				return nil, configErrorf("configmap %q not found", from.ConfigMapRef.Name)
			}
			data = cm.Data
		case from.SecretRef != nil:
			optional := from.SecretRef.Optional != nil && *from.SecretRef.Optional
			s, err := objs.secret(ns, from.SecretRef.Name)
			if err != nil {
				if apierrors.IsNotFound(err) && optional {
					continue
				}
				return nil, configErrorf("secret %q not found", from.SecretRef.Name)
			}
			data = map[string]string{}
			for k, v := range s.Data {
				data[k] = string(v)
			}
		}
		for k, v := range data {
			env[from.Prefix+k] = v
		}
	}
	mapping := expansion.MappingFuncFor(env, service)
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			env[e.Name] = expansion.Expand(e.Value, mapping)
			continue
		}
		v, skip, err := valueFrom(ec, c, e.ValueFrom, objs)
		if err != nil {
			return nil, err
		}
		if !skip {
			env[e.Name] = v
		}
	}
	for k, v := range service {
		if _, set := env[k]; !set {
			env[k] = v
		}
	}
	return env, nil
}

func valueFrom(ec envContext, c *corev1.Container, src *corev1.EnvVarSource, objs objects) (string, bool, error) {
	ns := ec.pod.Namespace
	switch {
	case src.FieldRef != nil:
		v, err := podField(ec, src.FieldRef.FieldPath)
		return v, false, err
	case src.ResourceFieldRef != nil:
		v, err := resourcehelper.ExtractResourceValueByContainerNameAndNodeAllocatable(src.ResourceFieldRef, ec.pod, c.Name, ec.allocated)
		return v, false, err
	case src.ConfigMapKeyRef != nil:
		ref := src.ConfigMapKeyRef
		optional := ref.Optional != nil && *ref.Optional
		cm, err := objs.configMap(ns, ref.Name)
		if err != nil {
			if apierrors.IsNotFound(err) && optional {
				return "", true, nil
			}
			return "", false, configErrorf("configmap %q not found", ref.Name)
		}
		v, ok := cm.Data[ref.Key]
		if !ok {
			if optional {
				return "", true, nil
			}
			return "", false, configErrorf("couldn't find key %s in ConfigMap %s/%s", ref.Key, ns, ref.Name)
		}
		return v, false, nil
	case src.SecretKeyRef != nil:
		ref := src.SecretKeyRef
		optional := ref.Optional != nil && *ref.Optional
		s, err := objs.secret(ns, ref.Name)
		if err != nil {
			if apierrors.IsNotFound(err) && optional {
				return "", true, nil
			}
			return "", false, configErrorf("secret %q not found", ref.Name)
		}
		v, ok := s.Data[ref.Key]
		if !ok {
			if optional {
				return "", true, nil
			}
			return "", false, configErrorf("couldn't find key %s in Secret %s/%s", ref.Key, ns, ref.Name)
		}
		return string(v), false, nil
	}
	return "", false, configErrorf("unsupported valueFrom")
}

// podField is the kubelet's podFieldSelectorRuntimeValue, with this machine
// as the host.
func podField(ec envContext, path string) (string, error) {
	switch path {
	case "spec.nodeName":
		return ec.pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return ec.pod.Spec.ServiceAccountName, nil
	case "status.hostIP", "status.hostIPs":
		return "127.0.0.1", nil
	case "status.podIP", "status.podIPs":
		return ec.podIP, nil
	}
	return fieldpath.ExtractFieldPathAsString(ec.pod, path)
}

// processEnv is the full environment of the process, sorted: the image's
// PATH and env, HOSTNAME, then the container's variables on top.
func processEnv(m imageMapping, hostname string, own map[string]string) []string {
	all := map[string]string{"PATH": defaultPath, "HOME": "/"}
	for k, v := range m.Env {
		all[k] = v
	}
	if len(m.Path) > 0 {
		all["PATH"] = strings.Join(m.Path, ":") + ":" + all["PATH"]
	}
	all["HOSTNAME"] = hostname
	for k, v := range own {
		all[k] = v
	}
	out := make([]string, 0, len(all))
	for k, v := range all {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// commandLine is the runtime's rule (command replaces the image entrypoint,
// args replace its cmd) with the kubelet's $(VAR) expansion.
func commandLine(m imageMapping, c *corev1.Container, env map[string]string) ([]string, error) {
	mapping := expansion.MappingFuncFor(env)
	var argv []string
	if len(c.Command) > 0 {
		for _, s := range c.Command {
			argv = append(argv, expansion.Expand(s, mapping))
		}
	} else {
		argv = append(argv, m.Entrypoint...)
	}
	if len(c.Args) > 0 || len(c.Command) > 0 {
		for _, s := range c.Args {
			argv = append(argv, expansion.Expand(s, mapping))
		}
	} else {
		argv = append(argv, m.Cmd...)
	}
	if len(argv) == 0 {
		return nil, configErrorf("container %q has no command, and image %q has no entrypoint in the exec configuration", c.Name, c.Image)
	}
	return argv, nil
}

// nodeAllocatable is what every fake node offers (kwok.go): the default
// value of limits.* for a container without limits.
func nodeAllocatable() corev1.ResourceList {
	return corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("16"),
		corev1.ResourceMemory: resource.MustParse("64Gi"),
	}
}
