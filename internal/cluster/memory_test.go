package cluster

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/kubernetes/scheme"
	k8stesting "k8s.io/client-go/testing"

	"github.com/opportunist/opportunist/internal/capacity"
)

// memorySink keeps the last BenchmarkCacheMemory's cache alive until the
// test binary writes -memprofile, so that the profile shows what it holds.
var memorySink *Cache

// BenchmarkCacheMemory measures what `opportunist run` holds for a cluster
// at Kubernetes' envelope, 5,000 nodes and 150,000 pods, and the peak on
// the way: every object goes through the Cache's real informers (reflector,
// queue, transform, store, event handlers, ledger) as a watch event,
// decoded from the API server's wire form (JSON, client-go's default, or
// protobuf) just before, so that the decoder's garbage is there as in a
// live process.
// One pod in ten belongs to an opportunistic workload; the rest to 3,000
// Deployments' ReplicaSets across 100 namespaces.
//
//	go test ./internal/cluster -run XXX -bench CacheMemory -benchtime 1x -memprofile mem.out
//	go tool pprof -top -sample_index=inuse_space -nodecount=20 mem.out
//
// Reported: heap-MiB and heap-B/pod, the live heap the cache added (after
// GC); peak-RSS-MiB, the process's VmHWM from the first event to the last
// (reset before, Linux only; run one wire per process to compare them); round-KiB, the garbage of what one decision
// round reads (Report, Rooms, Pending, Opportunistic). The loop times
// nothing of interest: run it with -benchtime 1x.
func BenchmarkCacheMemory(b *testing.B) {
	nodes, pods := 5000, 150000
	if testing.Short() {
		nodes, pods = 200, 6000
	}
	for _, wire := range []string{"json", "protobuf"} {
		b.Run(fmt.Sprintf("nodes=%d/pods=%d/wire=%s", nodes, pods, wire), func(b *testing.B) {
			for b.Loop() {
				memorySink = nil
				measureCache(b, nodes, pods, wireCodecs[wire])
			}
		})
	}
}

// wireCodecs write core/v1 objects with their kind, as the API server does
// in each encoding.
var wireCodecs = map[string]k8sruntime.Encoder{
	"json":     scheme.Codecs.LegacyCodec(corev1.SchemeGroupVersion),
	"protobuf": protobufCodec(),
}

func protobufCodec() k8sruntime.Encoder {
	info, _ := k8sruntime.SerializerInfoForMediaType(scheme.Codecs.SupportedMediaTypes(), k8sruntime.ContentTypeProtobuf)
	return scheme.Codecs.EncoderForVersion(info.Serializer, corev1.SchemeGroupVersion)
}

func measureCache(b *testing.B, nodes, pods int, wire k8sruntime.Encoder) {
	client := fake.NewClientset()
	nodeWatch, podWatch := make(chan *watch.FakeWatcher, 1), make(chan *watch.FakeWatcher, 1)
	for _, r := range []struct {
		resource string
		list     k8sruntime.Object
		watches  chan *watch.FakeWatcher
	}{
		{"nodes", &corev1.NodeList{ListMeta: metav1.ListMeta{ResourceVersion: "1"}}, nodeWatch},
		{"pods", &corev1.PodList{ListMeta: metav1.ListMeta{ResourceVersion: "1"}}, podWatch},
	} {
		client.PrependReactor("list", r.resource, func(k8stesting.Action) (bool, k8sruntime.Object, error) {
			return true, r.list, nil
		})
		client.PrependWatchReactor(r.resource, func(k8stesting.Action) (bool, watch.Interface, error) {
			w := watch.NewFakeWithChanSize(64, false)
			r.watches <- w
			return true, w, nil
		})
	}
	c := New(client, Options{Probe: func(context.Context) error { return nil }, ProbeInterval: time.Hour})
	c.SetWorkloads([]capacity.Workload{{Key: "work/worker", Namespace: "work", Selector: labels.SelectorFromSet(labels.Set{"app": "worker"})}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	if err := c.WaitForSync(ctx); err != nil {
		b.Fatal(err)
	}
	nw, pw := <-nodeWatch, <-podWatch

	decoder := scheme.Codecs.UniversalDeserializer()
	before := heapInUse()
	debug.FreeOSMemory() // so that the peak starts from what is live
	resetPeakRSS()
	for i := range nodes {
		nw.Add(decode(b, decoder, encode(b, wire, wireNode(i))))
	}
	for i := range pods {
		pw.Add(decode(b, decoder, encode(b, wire, wirePod(i, nodes))))
	}
	for bound := int64(0); bound < int64(pods); {
		time.Sleep(10 * time.Millisecond)
		r, _ := c.Report().Resource(corev1.ResourcePods)
		bound = r.Requests
	}
	peak := peakRSS()
	held := heapInUse() - before

	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	_ = c.Report()
	_ = c.Rooms()
	_ = c.Pending()
	opp := c.Opportunistic()
	runtime.ReadMemStats(&m1)
	if len(opp) == 0 {
		b.Fatal("no opportunistic pods: the workload matched nothing")
	}
	b.ReportMetric(float64(held)/(1<<20), "heap-MiB")
	b.ReportMetric(float64(held)/float64(pods), "heap-B/pod")
	b.ReportMetric(float64(peak)/(1<<20), "peak-RSS-MiB")
	b.ReportMetric(float64(m1.TotalAlloc-m0.TotalAlloc)/(1<<10), "round-KiB")
	memorySink = c
}

func encode(b *testing.B, wire k8sruntime.Encoder, obj k8sruntime.Object) []byte {
	data, err := k8sruntime.Encode(wire, obj)
	if err != nil {
		b.Fatal(err)
	}
	return data
}

func decode(b *testing.B, d k8sruntime.Decoder, data []byte) k8sruntime.Object {
	obj, _, err := d.Decode(data, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	return obj
}

// wireNode is a node as a kubelet reports it: labels, capacity, conditions.
func wireNode(i int) *corev1.Node {
	name := fmt.Sprintf("ip-10-%d-%d-%d.eu-west-1.compute.internal", i/65536, i/256%256, i%256)
	list := corev1.ResourceList{"cpu": resource.MustParse("16"), "memory": resource.MustParse("64Gi"),
		"pods": resource.MustParse("110"), "ephemeral-storage": resource.MustParse("100Gi")}
	var conds []corev1.NodeCondition
	for _, t := range []corev1.NodeConditionType{"MemoryPressure", "DiskPressure", "PIDPressure", corev1.NodeReady} {
		s := corev1.ConditionFalse
		if t == corev1.NodeReady {
			s = corev1.ConditionTrue
		}
		conds = append(conds, corev1.NodeCondition{Type: t, Status: s, Reason: "KubeletReady", Message: "kubelet is posting ready status"})
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, UID: uid(1<<30 + i), ResourceVersion: strconv.Itoa(1000 + i),
			Labels: map[string]string{"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
				"node.kubernetes.io/instance-type": "m5.4xlarge", "topology.kubernetes.io/zone": fmt.Sprintf("eu-west-1%c", 'a'+i%3)}},
		Spec:   corev1.NodeSpec{ProviderID: "aws:///eu-west-1a/i-" + strconv.Itoa(i)},
		Status: corev1.NodeStatus{Capacity: list, Allocatable: list, Conditions: conds},
	}
}

// wirePod is a pod of a Deployment as the API server returns it: labels,
// owner, managed fields, env, probes, volumes, status. Pods are spread
// round-robin over the nodes; one in ten is the opportunistic worker's.
func wirePod(i, nodes int) *corev1.Pod {
	ns, app, cpu, mem := fmt.Sprintf("team-%d", i%100), fmt.Sprintf("svc-%d", i%3000), "250m", "512Mi"
	if i%10 == 0 {
		ns, app, cpu, mem = "work", "worker", "2", "4Gi"
	}
	hash := fmt.Sprintf("%x", 0x5d8f7c9b6+i%3000)
	ctrl := true
	created := metav1.NewTime(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC))
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ns, Name: fmt.Sprintf("%s-%s-%05x", app, hash, i), GenerateName: app + "-" + hash + "-",
			UID: uid(i), ResourceVersion: strconv.Itoa(100000 + i), CreationTimestamp: created,
			Labels: map[string]string{"app": app, "app.kubernetes.io/name": app, "app.kubernetes.io/part-of": "shop", "pod-template-hash": hash},
			Annotations: map[string]string{"kubectl.kubernetes.io/restartedAt": "2026-11-01T00:00:00Z",
				"prometheus.io/scrape": "true", "prometheus.io/port": "9102"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: app + "-" + hash,
				UID: uid(1<<29 + i%3000), Controller: &ctrl, BlockOwnerDeletion: &ctrl}},
			ManagedFields: []metav1.ManagedFieldsEntry{
				{Manager: "kube-controller-manager", Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "v1", Time: &created,
					FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:metadata":{"f:generateName":{},"f:labels":{".":{},"f:app":{},"f:pod-template-hash":{}},"f:ownerReferences":{".":{},"k:{\"uid\":\"x\"}":{}}},"f:spec":{"f:containers":{"k:{\"name\":\"main\"}":{".":{},"f:env":{},"f:image":{},"f:name":{},"f:resources":{"f:requests":{}}}}}}`)}},
				{Manager: "kubelet", Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "v1", Time: &created, Subresource: "status",
					FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:status":{"f:conditions":{"k:{\"type\":\"Ready\"}":{".":{},"f:lastProbeTime":{},"f:lastTransitionTime":{},"f:status":{},"f:type":{}}},"f:containerStatuses":{},"f:hostIP":{},"f:phase":{},"f:podIP":{},"f:podIPs":{},"f:startTime":{}}}`)}},
			},
		},
		Spec: corev1.PodSpec{
			NodeName: fmt.Sprintf("ip-10-%d-%d-%d.eu-west-1.compute.internal", i%nodes/65536, i%nodes/256%256, i%nodes%256),
			Containers: []corev1.Container{{
				Name: "main", Image: "registry.example.com/shop/" + app + ":v1.2.3",
				Args: []string{"--port=8080", "--log-level=info"},
				Env: []corev1.EnvVar{{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
					{Name: "GOMAXPROCS", Value: "2"}, {Name: "LOG_FORMAT", Value: "json"}},
				Ports:          []corev1.ContainerPort{{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP}},
				Resources:      corev1.ResourceRequirements{Requests: corev1.ResourceList{"cpu": resource.MustParse(cpu), "memory": resource.MustParse(mem)}},
				ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(8080)}}, PeriodSeconds: 10},
				VolumeMounts:   []corev1.VolumeMount{{Name: "kube-api-access-abcde", MountPath: "/var/run/secrets/kubernetes.io/serviceaccount", ReadOnly: true}},
			}},
			Volumes:            []corev1.Volume{{Name: "kube-api-access-abcde", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{}}}},
			ServiceAccountName: "default", SchedulerName: "default-scheduler", RestartPolicy: corev1.RestartPolicyAlways,
			Tolerations: []corev1.Toleration{{Key: "node.kubernetes.io/not-ready", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute},
				{Key: "node.kubernetes.io/unreachable", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute}},
		},
		Status: corev1.PodStatus{
			Phase: corev1.PodRunning, HostIP: "10.0.0.1", PodIP: "10.244.0.1", PodIPs: []corev1.PodIP{{IP: "10.244.0.1"}},
			StartTime: &created, QOSClass: corev1.PodQOSBurstable,
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(created.Add(3 * time.Second))},
				{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: created}},
			ContainerStatuses: []corev1.ContainerStatus{{Name: "main", Ready: true, Image: "registry.example.com/shop/" + app + ":v1.2.3",
				ImageID:     "registry.example.com/shop/" + app + "@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
				ContainerID: "containerd://" + strings.Repeat("ab", 32)}},
		},
	}
}

// uid is a distinct UID per n, as the API server gives every object.
func uid(n int) types.UID {
	return types.UID(fmt.Sprintf("%08x-f9d7-11e7-bdb6-%012x", n, n*7919))
}

// resetPeakRSS resets the process's VmHWM to its current RSS (Linux's
// clear_refs 5); elsewhere it does nothing.
func resetPeakRSS() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// peakRSS is the process's VmHWM in bytes, 0 where /proc is missing.
func peakRSS() uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// BenchmarkDecodePod times decoding one pod of BenchmarkCacheMemory from
// each wire encoding: what every pod event costs before the transform.
func BenchmarkDecodePod(b *testing.B) {
	decoder := scheme.Codecs.UniversalDeserializer()
	for _, wire := range []string{"json", "protobuf"} {
		b.Run("wire="+wire, func(b *testing.B) {
			data := encode(b, wireCodecs[wire], wirePod(7, 5000))
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				decode(b, decoder, data)
			}
		})
	}
}
