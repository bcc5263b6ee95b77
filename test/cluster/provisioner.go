package main

// provisioner.go makes PersistentVolumeClaims work: the harness installs a
// default StorageClass and acts as its (external) provisioner. The real
// persistent-volume binder in kube-controller-manager marks each claim of the
// class for this provisioner; the harness then creates a hostPath
// PersistentVolume backed by a fresh directory under DATA_DIR/volumes,
// pre-bound to the claim, and the binder binds the two. A released volume of
// reclaim policy Delete loses its directory and is deleted, as an external
// provisioner does. Painted pods and exec pods use claims alike; exec pods
// bind the directory at their mount path, so two pods share it.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

const (
	provisionerName     = "testcluster.dataworks.io/local-dir"
	defaultStorageClass = "standard"
	provisionedByKey    = "pv.kubernetes.io/provisioned-by"
	storageProvisioner  = "volume.kubernetes.io/storage-provisioner"
	storageProvisionerB = "volume.beta.kubernetes.io/storage-provisioner"
)

type provisioner struct {
	cs  kubernetes.Interface
	dir string
}

func defaultClass() *storagev1.StorageClass {
	reclaim := corev1.PersistentVolumeReclaimDelete
	mode := storagev1.VolumeBindingImmediate
	return &storagev1.StorageClass{
		ObjectMeta: metav1.ObjectMeta{
			Name:        defaultStorageClass,
			Annotations: map[string]string{"storageclass.kubernetes.io/is-default-class": "true"},
		},
		Provisioner:       provisionerName,
		ReclaimPolicy:     &reclaim,
		VolumeBindingMode: &mode,
	}
}

// runProvisioner installs the default StorageClass and watches claims and
// volumes until ctx ends.
func runProvisioner(ctx context.Context, cs kubernetes.Interface, factory informers.SharedInformerFactory, dir string) error {
	if _, err := cs.StorageV1().StorageClasses().Create(ctx, defaultClass(), metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("default StorageClass: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	p := &provisioner{cs: cs, dir: dir}
	claims := factory.Core().V1().PersistentVolumeClaims().Informer()
	if _, err := claims.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { p.claim(ctx, obj) },
		UpdateFunc: func(_, obj any) { p.claim(ctx, obj) },
	}); err != nil {
		return err
	}
	volumes := factory.Core().V1().PersistentVolumes().Informer()
	_, err := volumes.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { p.volume(ctx, obj) },
		UpdateFunc: func(_, obj any) { p.volume(ctx, obj) },
	})
	return err
}

func volumeName(pvc *corev1.PersistentVolumeClaim) string { return "pvc-" + string(pvc.UID) }

// claim provisions a volume for a claim the binder handed to us.
func (p *provisioner) claim(ctx context.Context, obj any) {
	pvc, ok := obj.(*corev1.PersistentVolumeClaim)
	if !ok || pvc.Spec.VolumeName != "" || pvc.Status.Phase != corev1.ClaimPending || pvc.DeletionTimestamp != nil {
		return
	}
	if pvc.Annotations[storageProvisioner] != provisionerName && pvc.Annotations[storageProvisionerB] != provisionerName {
		return
	}
	name := volumeName(pvc)
	path := filepath.Join(p.dir, name)
	if err := os.MkdirAll(path, 0o777); err != nil {
		warnf("provision %s/%s: %v", pvc.Namespace, pvc.Name, err)
		return
	}
	_ = os.Chmod(path, 0o777) // writable by any pod user, like the in-tree hostPath provisioner
	capacity := pvc.Spec.Resources.Requests[corev1.ResourceStorage]
	class := ""
	if pvc.Spec.StorageClassName != nil {
		class = *pvc.Spec.StorageClassName
	}
	reclaim := corev1.PersistentVolumeReclaimDelete
	if sc, err := p.cs.StorageV1().StorageClasses().Get(ctx, class, metav1.GetOptions{}); err == nil && sc.ReclaimPolicy != nil {
		reclaim = *sc.ReclaimPolicy
	}
	dirType := corev1.HostPathDirectoryOrCreate
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{provisionedByKey: provisionerName}},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: capacity},
			AccessModes:                   pvc.Spec.AccessModes,
			PersistentVolumeReclaimPolicy: reclaim,
			StorageClassName:              class,
			VolumeMode:                    pvc.Spec.VolumeMode,
			ClaimRef: &corev1.ObjectReference{
				Kind: "PersistentVolumeClaim", APIVersion: "v1",
				Namespace: pvc.Namespace, Name: pvc.Name, UID: pvc.UID,
			},
			PersistentVolumeSource: corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: path, Type: &dirType}},
		},
	}
	if _, err := p.cs.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) && ctx.Err() == nil {
		warnf("provision %s/%s: %v", pvc.Namespace, pvc.Name, err)
	}
}

// volume deletes a released volume of ours whose policy is Delete.
func (p *provisioner) volume(ctx context.Context, obj any) {
	pv, ok := obj.(*corev1.PersistentVolume)
	if !ok || pv.Annotations[provisionedByKey] != provisionerName || pv.DeletionTimestamp != nil {
		return
	}
	if pv.Status.Phase != corev1.VolumeReleased || pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimDelete {
		return
	}
	if hp := pv.Spec.HostPath; hp != nil && filepath.Dir(hp.Path) == p.dir {
		if err := os.RemoveAll(hp.Path); err != nil {
			warnf("delete volume %s: %v", pv.Name, err)
			return
		}
	}
	if err := p.cs.CoreV1().PersistentVolumes().Delete(ctx, pv.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) && ctx.Err() == nil {
		warnf("delete volume %s: %v", pv.Name, err)
	}
}
