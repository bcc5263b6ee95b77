package main

// execvolumes.go gives each volume of an exec pod a directory on this
// machine, the way the kubelet's volume plugins do: ConfigMap, Secret,
// downwardAPI and projected volumes (the ServiceAccount token through
// TokenRequest) are written as files, emptyDir is a fresh directory, a PVC is
// its bound PersistentVolume's directory (shared by every pod that mounts
// it), hostPath is the host's path. The container's init process then binds
// these directories on the mount paths (podinit).

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	resourcehelper "k8s.io/kubernetes/pkg/api/v1/resource"
	"k8s.io/kubernetes/third_party/forked/golang/expansion"

	"dataworks.io/testcluster/podinit"
)

// volumeFiles writes projected files into a directory with the pod's owner.
type volumeFiles struct {
	dir      string
	uid, gid int // -1: leave as is
}

func (v volumeFiles) write(rel string, data []byte, mode int32) error {
	if strings.Contains(rel, "..") {
		return configErrorf("invalid path %q in volume", rel)
	}
	p := filepath.Join(v.dir, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(p, data, 0o600); err != nil {
		return err
	}
	perm := os.FileMode(mode) & 0o777
	if v.gid >= 0 {
		perm |= 0o040 // readable by fsGroup, as the kubelet does
	}
	if err := os.Chmod(p, perm); err != nil {
		return err
	}
	return os.Lchown(p, v.uid, v.gid)
}

func modeOr(m *int32, def int32) int32 {
	if m != nil {
		return *m
	}
	return def
}

// volumeSource is the part of the harness the volume code needs.
type volumeSource struct {
	cs    kubernetes.Interface
	objs  objects
	ctx   context.Context
	ec    envContext
	owner volumeFiles // uid/gid for written files
}

// prepareVolumes returns volume name -> host directory (or file).
func (s volumeSource) prepareVolumes(root string) (map[string]string, error) {
	out := map[string]string{}
	for i := range s.ec.pod.Spec.Volumes {
		vol := &s.ec.pod.Spec.Volumes[i]
		dir := filepath.Join(root, vol.Name)
		path, err := s.prepare(vol, dir)
		if err != nil {
			var ce *configError
			if apierrors.IsNotFound(err) || asConfigError(err, &ce) {
				return nil, configErrorf("volume %q: %v", vol.Name, err)
			}
			return nil, fmt.Errorf("volume %q: %w", vol.Name, err)
		}
		out[vol.Name] = path
	}
	return out, nil
}

func asConfigError(err error, target **configError) bool {
	ce, ok := err.(*configError)
	if ok {
		*target = ce
	}
	return ok
}

func (s volumeSource) fresh(dir string) (volumeFiles, error) {
	if err := os.RemoveAll(dir); err != nil {
		return volumeFiles{}, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return volumeFiles{}, err
	}
	v := s.owner
	v.dir = dir
	return v, os.Lchown(dir, v.uid, v.gid)
}

func (s volumeSource) prepare(vol *corev1.Volume, dir string) (string, error) {
	switch {
	case vol.EmptyDir != nil:
		if err := os.MkdirAll(dir, 0o777); err != nil {
			return "", err
		}
		return dir, os.Chmod(dir, 0o777)
	case vol.HostPath != nil:
		if t := vol.HostPath.Type; t != nil && *t == corev1.HostPathDirectoryOrCreate {
			if err := os.MkdirAll(vol.HostPath.Path, 0o755); err != nil {
				return "", err
			}
		}
		if _, err := os.Stat(vol.HostPath.Path); err != nil {
			return "", configErrorf("hostPath: %v", err)
		}
		return vol.HostPath.Path, nil
	case vol.PersistentVolumeClaim != nil:
		return s.claimPath(vol.PersistentVolumeClaim.ClaimName)
	case vol.Ephemeral != nil:
		return s.claimPath(s.ec.pod.Name + "-" + vol.Name) // the ephemeral-volume controller's claim
	case vol.ConfigMap != nil:
		v, err := s.fresh(dir)
		if err != nil {
			return "", err
		}
		return dir, s.configMapFiles(v, vol.ConfigMap.Name, vol.ConfigMap.Items, vol.ConfigMap.Optional, modeOr(vol.ConfigMap.DefaultMode, 0o644))
	case vol.Secret != nil:
		v, err := s.fresh(dir)
		if err != nil {
			return "", err
		}
		return dir, s.secretFiles(v, vol.Secret.SecretName, vol.Secret.Items, vol.Secret.Optional, modeOr(vol.Secret.DefaultMode, 0o644))
	case vol.DownwardAPI != nil:
		v, err := s.fresh(dir)
		if err != nil {
			return "", err
		}
		return dir, s.downwardFiles(v, vol.DownwardAPI.Items, modeOr(vol.DownwardAPI.DefaultMode, 0o644))
	case vol.Projected != nil:
		v, err := s.fresh(dir)
		if err != nil {
			return "", err
		}
		mode := modeOr(vol.Projected.DefaultMode, 0o644)
		for _, src := range vol.Projected.Sources {
			var err error
			switch {
			case src.ConfigMap != nil:
				err = s.configMapFiles(v, src.ConfigMap.Name, src.ConfigMap.Items, src.ConfigMap.Optional, mode)
			case src.Secret != nil:
				err = s.secretFiles(v, src.Secret.Name, src.Secret.Items, src.Secret.Optional, mode)
			case src.DownwardAPI != nil:
				err = s.downwardFiles(v, src.DownwardAPI.Items, mode)
			case src.ServiceAccountToken != nil:
				err = s.tokenFile(v, src.ServiceAccountToken, mode)
			default:
				err = configErrorf("projected source not supported by testcluster exec pods")
			}
			if err != nil {
				return "", err
			}
		}
		return dir, nil
	}
	return "", configErrorf("volume type not supported by testcluster exec pods")
}

func (s volumeSource) claimPath(claim string) (string, error) {
	ns := s.ec.pod.Namespace
	pvc, err := s.cs.CoreV1().PersistentVolumeClaims(ns).Get(s.ctx, claim, metav1.GetOptions{})
	if err != nil {
		return "", configErrorf("persistentvolumeclaim %q: %v", claim, err)
	}
	if pvc.Status.Phase != corev1.ClaimBound || pvc.Spec.VolumeName == "" {
		return "", configErrorf("persistentvolumeclaim %q is not bound", claim)
	}
	pv, err := s.cs.CoreV1().PersistentVolumes().Get(s.ctx, pvc.Spec.VolumeName, metav1.GetOptions{})
	if err != nil {
		return "", configErrorf("persistentvolume %q: %v", pvc.Spec.VolumeName, err)
	}
	switch {
	case pv.Spec.HostPath != nil:
		return pv.Spec.HostPath.Path, nil
	case pv.Spec.Local != nil:
		return pv.Spec.Local.Path, nil
	}
	return "", configErrorf("persistentvolume %q is neither hostPath nor local", pv.Name)
}

func (s volumeSource) configMapFiles(v volumeFiles, name string, items []corev1.KeyToPath, optional *bool, mode int32) error {
	cm, err := s.objs.configMap(s.ec.pod.Namespace, name)
	if err != nil {
		if apierrors.IsNotFound(err) && optional != nil && *optional {
			return nil
		}
		return configErrorf("configmap %q not found", name)
	}
	data := map[string][]byte{}
	for k, val := range cm.Data {
		data[k] = []byte(val)
	}
	for k, val := range cm.BinaryData {
		data[k] = val
	}
	return writeKeys(v, data, items, optional, mode, "configmap", name)
}

func (s volumeSource) secretFiles(v volumeFiles, name string, items []corev1.KeyToPath, optional *bool, mode int32) error {
	sec, err := s.objs.secret(s.ec.pod.Namespace, name)
	if err != nil {
		if apierrors.IsNotFound(err) && optional != nil && *optional {
			return nil
		}
		return configErrorf("secret %q not found", name)
	}
	return writeKeys(v, sec.Data, items, optional, mode, "secret", name)
}

func writeKeys(v volumeFiles, data map[string][]byte, items []corev1.KeyToPath, optional *bool, mode int32, kind, name string) error {
	if len(items) == 0 {
		for k, val := range data {
			if err := v.write(k, val, mode); err != nil {
				return err
			}
		}
		return nil
	}
	for _, it := range items {
		val, ok := data[it.Key]
		if !ok {
			if optional != nil && *optional {
				continue
			}
			return configErrorf("%s %q has no key %q", kind, name, it.Key)
		}
		if err := v.write(it.Path, val, modeOr(it.Mode, mode)); err != nil {
			return err
		}
	}
	return nil
}

func (s volumeSource) downwardFiles(v volumeFiles, items []corev1.DownwardAPIVolumeFile, mode int32) error {
	for _, it := range items {
		var val string
		var err error
		switch {
		case it.FieldRef != nil:
			val, err = podField(s.ec, it.FieldRef.FieldPath)
		case it.ResourceFieldRef != nil:
			val, err = resourcehelper.ExtractResourceValueByContainerNameAndNodeAllocatable(it.ResourceFieldRef, s.ec.pod, it.ResourceFieldRef.ContainerName, s.ec.allocated)
		}
		if err != nil {
			return configErrorf("downward API %s: %v", it.Path, err)
		}
		if err := v.write(it.Path, []byte(val), modeOr(it.Mode, mode)); err != nil {
			return err
		}
	}
	return nil
}

// tokenFile asks the API server for a token bound to this pod, as the
// kubelet does for a projected serviceAccountToken source.
func (s volumeSource) tokenFile(v volumeFiles, src *corev1.ServiceAccountTokenProjection, mode int32) error {
	pod := s.ec.pod
	sa := pod.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		ExpirationSeconds: src.ExpirationSeconds,
		BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
	}}
	if src.Audience != "" {
		req.Spec.Audiences = []string{src.Audience}
	}
	tr, err := s.cs.CoreV1().ServiceAccounts(pod.Namespace).CreateToken(s.ctx, sa, req, metav1.CreateOptions{})
	if err != nil {
		return configErrorf("token for serviceaccount %q: %v", sa, err)
	}
	return v.write(src.Path, []byte(tr.Status.Token), mode)
}

// containerMounts turns the container's volumeMounts into bind mounts.
func containerMounts(c *corev1.Container, volumes map[string]string, env map[string]string) ([]podinit.Mount, error) {
	var out []podinit.Mount
	mapping := expansion.MappingFuncFor(env)
	for _, vm := range c.VolumeMounts {
		src, ok := volumes[vm.Name]
		if !ok {
			return nil, configErrorf("volume %q of mount %s not found", vm.Name, vm.MountPath)
		}
		sub := vm.SubPath
		if vm.SubPathExpr != "" {
			sub = expansion.Expand(vm.SubPathExpr, mapping)
		}
		if sub != "" {
			if filepath.IsAbs(sub) || strings.Contains(sub, "..") {
				return nil, configErrorf("invalid subPath %q", sub)
			}
			src = filepath.Join(src, sub)
			if _, err := os.Stat(src); os.IsNotExist(err) {
				if err := os.MkdirAll(src, 0o777); err != nil {
					return nil, err
				}
				_ = os.Chmod(src, 0o777)
			}
		}
		out = append(out, podinit.Mount{Source: src, Target: vm.MountPath, ReadOnly: vm.ReadOnly})
	}
	return out, nil
}
