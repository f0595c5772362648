package cluster

import (
	"fmt"
	"runtime"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/opportunist/opportunist/internal/capacity"
)

// realisticPod looks like a pod from a Deployment as the API server returns
// it: labels, owner, managed fields, env, probes, volumes, status.
func realisticPod(i int) *corev1.Pod {
	ctrl := true
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: fmt.Sprintf("ns-%d", i%50), Name: fmt.Sprintf("app-%d-5d8f7c9b6-%05d", i%500, i),
			UID:             "3e244e73-f9d7-11e7-bdb6-42010a9a0027",
			ResourceVersion: fmt.Sprint(1000000 + i),
			Labels:          map[string]string{"app": fmt.Sprintf("app-%d", i%500), "pod-template-hash": "5d8f7c9b6"},
			Annotations:     map[string]string{"kubectl.kubernetes.io/restartedAt": "2026-11-01T00:00:00Z"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: fmt.Sprintf("app-%d-5d8f7c9b6", i%500), UID: "3e244e73", Controller: &ctrl}},
			ManagedFields:   []metav1.ManagedFieldsEntry{{Manager: "kube-controller-manager", Operation: metav1.ManagedFieldsOperationUpdate, FieldsV1: &metav1.FieldsV1{Raw: make([]byte, 800)}}},
		},
		Spec: corev1.PodSpec{
			NodeName: fmt.Sprintf("node-%05d", i%5000),
			Containers: []corev1.Container{{
				Name: "main", Image: "registry.example.com/team/app:v1.2.3",
				Env:            []corev1.EnvVar{{Name: "A", Value: "1"}, {Name: "B", Value: "2"}, {Name: "C", Value: "3"}},
				Resources:      corev1.ResourceRequirements{Requests: corev1.ResourceList{"cpu": resource.MustParse("100m"), "memory": resource.MustParse("256Mi")}},
				ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz"}}},
				VolumeMounts:   []corev1.VolumeMount{{Name: "token", MountPath: "/var/run/secrets/kubernetes.io/serviceaccount"}},
			}},
			Volumes: []corev1.Volume{{Name: "token", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{}}}},
		},
		Status: corev1.PodStatus{
			Phase:             corev1.PodRunning,
			PodIP:             "10.0.0.1",
			Conditions:        []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
			ContainerStatuses: []corev1.ContainerStatus{{Name: "main", Ready: true, Image: "registry.example.com/team/app:v1.2.3", ImageID: "sha256:abcdef"}},
		},
	}
}

// BenchmarkTrimmedPodsMemory reports the heap held for 150,000 pods the way
// `opportunist run` holds them: transformed objects in the informer's store
// plus the capacity ledger's entries (which share their models' maps). The
// benchmark loop times one transform.
func BenchmarkTrimmedPodsMemory(b *testing.B) {
	const pods = 150000
	b.Run(fmt.Sprintf("pods=%d", pods), func(b *testing.B) {
		before := heapInUse()
		store := cache.NewStore(cache.MetaNamespaceKeyFunc)
		ledger := capacity.NewLedger(nil)
		for i := range pods {
			obj, _ := TransformPod(realisticPod(i))
			p := obj.(*PodObject)
			if err := store.Add(p); err != nil {
				b.Fatal(err)
			}
			ledger.UpsertPod(p.Model)
		}
		held := heapInUse() - before
		sample := realisticPod(7)
		b.ReportAllocs()
		for b.Loop() {
			_, _ = TransformPod(sample)
		}
		b.ReportMetric(float64(held)/(1<<20), "heap-MiB")
		runtime.KeepAlive(store)
		runtime.KeepAlive(ledger)
	})
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}
