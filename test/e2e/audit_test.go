//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
	"k8s.io/client-go/tools/clientcmd"
	certutil "k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/keyutil"
	crclient "sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/opportunist/opportunist/api/v1alpha1"
)

// identity is a user the API server's audit log tells apart from the
// others: a client certificate signed by the cluster CA, bound to
// cluster-admin, and a kubeconfig that uses it.
type identity struct {
	User       string
	Kubeconfig string
}

// newIdentity makes a client certificate for user, a kubeconfig next to the
// test's artifacts and a ClusterRoleBinding to cluster-admin (deleted when
// the test ends). With groups, the certificate puts the user in them (e.g.
// auditedGroup, whose every request the audit log records).
func newIdentity(t *testing.T, user string, groups ...string) identity {
	t.Helper()
	caCert, err := certutil.CertsFromFile(filepath.Join(clusterDir, "pki", "ca.crt"))
	if err != nil {
		t.Fatalf("reading the cluster CA (hack/cluster's %s/pki): %v", clusterDir, err)
	}
	caKey, err := keyutil.PrivateKeyFromFile(filepath.Join(clusterDir, "pki", "ca.key"))
	if err != nil {
		t.Fatalf("reading the cluster CA key: %v", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(now.UnixNano()),
		Subject:      pkix.Name{CommonName: user, Organization: groups},
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     now.Add(2 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert[0], &key.PublicKey, caKey)
	if err != nil {
		t.Fatalf("signing a client certificate for %s: %v", user, err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.LoadFromFile(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	auth := cfg.AuthInfos[cfg.Contexts[cfg.CurrentContext].AuthInfo]
	auth.ClientCertificate, auth.ClientKey = "", ""
	auth.ClientCertificateData = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	auth.ClientKeyData = pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	path := filepath.Join(testDir(t), user+".kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}

	ctx := context.Background()
	crb := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "e2e-" + user},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}},
	}
	if _, err := client.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("binding %s to cluster-admin: %v", user, err)
	}
	t.Cleanup(func() {
		if err := client.RbacV1().ClusterRoleBindings().Delete(ctx, crb.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("deleting ClusterRoleBinding %s: %v", crb.Name, err)
		}
	})
	return identity{User: user, Kubeconfig: path}
}

// scaleWrite is one write the audit log recorded to a Deployment,
// StatefulSet or ReplicaSet, or to its /scale.
type scaleWrite struct {
	Time                      time.Time // when the API server received it
	User, Verb                string
	Namespace, Resource, Name string
	Subresource               string
	Code                      int32  // the response's HTTP status
	Replicas                  *int32 // spec.replicas of the body; nil when it sets none
	Line                      int    // in the audit log, for messages
}

func (w scaleWrite) String() string {
	r := "no replicas"
	if w.Replicas != nil {
		r = fmt.Sprintf("replicas %d", *w.Replicas)
	}
	target := w.Resource
	if w.Subresource != "" {
		target += "/" + w.Subresource
	}
	return fmt.Sprintf("%s %s %s %s %s/%s: %s, HTTP %d (audit.log line %d)", w.Time.Format("15:04:05.000"), w.User, w.Verb, target, w.Namespace, w.Name, r, w.Code, w.Line)
}

// auditLog is where hack/cluster's API server writes its audit events.
func auditLog() string { return filepath.Join(clusterDir, "logs", "audit.log") }

// scaleWrites returns the writes user made since a time, in namespace ns
// ("" for all), oldest first, as the API server's audit log has them.
func scaleWrites(t *testing.T, since time.Time, user, ns string) []scaleWrite {
	t.Helper()
	var out []scaleWrite
	readAudit(t, func(ev *auditv1.Event, line int) {
		if ev.ObjectRef == nil || ev.User.Username != user ||
			(ns != "" && ev.ObjectRef.Namespace != ns) || ev.RequestReceivedTimestamp.Time.Before(since) {
			return
		}
		if ev.Verb != "update" && ev.Verb != "patch" {
			return
		}
		w := scaleWrite{
			Time: ev.RequestReceivedTimestamp.Time, User: user, Verb: ev.Verb,
			Namespace: ev.ObjectRef.Namespace, Resource: ev.ObjectRef.Resource, Name: ev.ObjectRef.Name,
			Subresource: ev.ObjectRef.Subresource, Line: line,
		}
		if ev.ResponseStatus != nil {
			w.Code = ev.ResponseStatus.Code
		}
		if ev.RequestObject != nil {
			// A Scale, a whole workload or a patch: all keep the count in spec.replicas.
			var body struct {
				Spec struct {
					Replicas *int32 `json:"replicas"`
				} `json:"spec"`
			}
			if err := json.Unmarshal(ev.RequestObject.Raw, &body); err != nil {
				t.Fatalf("%s line %d: request body: %v", auditLog(), line, err)
			}
			w.Replicas = body.Spec.Replicas
		}
		out = append(out, w)
	})
	return out
}

// firstPodCreated is when the API server received the first successful
// create of a pod in namespace ns since a time (hack/cluster audits pod
// creates in scale-yield only, where the scale test times its paid pods).
func firstPodCreated(t *testing.T, since time.Time, ns string) (time.Time, bool) {
	t.Helper()
	var first time.Time
	readAudit(t, func(ev *auditv1.Event, _ int) {
		if ev.Verb != "create" || ev.ObjectRef == nil || ev.ObjectRef.Resource != "pods" || ev.ObjectRef.Subresource != "" ||
			ev.ObjectRef.Namespace != ns || ev.RequestReceivedTimestamp.Time.Before(since) ||
			ev.ResponseStatus == nil || ev.ResponseStatus.Code != 201 {
			return
		}
		if at := ev.RequestReceivedTimestamp.Time; first.IsZero() || at.Before(first) {
			first = at
		}
	})
	return first, !first.IsZero()
}

// readAudit calls each for every completed request in the API server's
// audit log, oldest first, with its line number.
func readAudit(t *testing.T, each func(ev *auditv1.Event, line int)) {
	t.Helper()
	f, err := os.Open(auditLog())
	if errors.Is(err, os.ErrNotExist) {
		t.Fatalf("no audit log at %s: this cluster's API server runs without the audit policy; restart it with `go run ./hack/cluster restart apiserver`", auditLog())
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	line := 0
	var partial error
	for sc.Scan() {
		line++
		if partial != nil { // only the last line may be half written
			t.Fatal(partial)
		}
		var ev auditv1.Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			partial = fmt.Errorf("%s line %d is not an audit event: %v", auditLog(), line, err)
			continue
		}
		if ev.Stage == auditv1.StageResponseComplete {
			each(&ev, line)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
}

// auditTimeSlack covers the time between a write's response and its audit
// event reaching the file.
const auditTimeSlack = time.Second

// auditedGroup is hack/cluster's auditedGroup: the audit log records every
// request of its users.
const auditedGroup = "opportunist-e2e:audited"

// checkWrites asserts, from the audit log, that every write the users made
// since a time is an update of the /scale of a workload that has an
// OpportunisticScaler, to a count within the scaler's [min, max]. Stop the
// writers first. It returns each user's writes.
func checkWrites(t *testing.T, c crclient.Client, since time.Time, users ...string) map[string][]scaleWrite {
	t.Helper()
	time.Sleep(auditTimeSlack)
	var scalers v1alpha1.OpportunisticScalerList
	if err := c.List(context.Background(), &scalers); err != nil {
		t.Fatal(err)
	}
	type bounds struct{ min, max int32 }
	owned := map[string]bounds{}
	for _, s := range scalers.Items {
		ref := s.Spec.ScaleTargetRef
		resource := strings.ToLower(ref.Kind) + "s" // Deployment, StatefulSet, ReplicaSet
		b := bounds{max: s.Spec.MaxReplicas}
		if s.Spec.MinReplicas != nil {
			b.min = *s.Spec.MinReplicas
		}
		owned[s.Namespace+"/"+resource+"/"+ref.Name] = b
	}
	out := map[string][]scaleWrite{}
	for _, user := range users {
		writes := scaleWrites(t, since, user, "")
		out[user] = writes
		var log []string
		for _, w := range writes {
			log = append(log, w.String())
			b, ok := owned[w.Namespace+"/"+w.Resource+"/"+w.Name]
			switch {
			case !ok:
				t.Errorf("%s wrote a workload no OpportunisticScaler targets: %s", user, w)
			case w.Subresource != "scale" || w.Verb != "update":
				t.Errorf("%s wrote a workload other than by an update of its /scale: %s", user, w)
			case w.Replicas == nil:
				t.Errorf("%s wrote /scale without a replica count: %s", user, w)
			case *w.Replicas < b.min || *w.Replicas > b.max:
				t.Errorf("%s wrote %d replicas, outside the scaler's [%d, %d]: %s", user, *w.Replicas, b.min, b.max, w)
			}
		}
		t.Logf("audit: %d writes by %s:\n  %s", len(writes), user, strings.Join(log, "\n  "))
	}
	return out
}

// writesBetween returns the writes received in [from, to).
func writesBetween(writes []scaleWrite, from, to time.Time) []scaleWrite {
	var out []scaleWrite
	for _, w := range writes {
		if !w.Time.Before(from) && w.Time.Before(to) {
			out = append(out, w)
		}
	}
	return out
}

// replicasWritten lists the counts written, in order.
func replicasWritten(writes []scaleWrite) []int32 {
	var out []int32
	for _, w := range writes {
		if w.Replicas != nil {
			out = append(out, *w.Replicas)
		}
	}
	return out
}

// checkOneWriterAtATime asserts that the writes of the users, in the order
// they took over, never interleave: once a user's first write is seen, no
// earlier user writes again.
func checkOneWriterAtATime(t *testing.T, writes map[string][]scaleWrite, users ...string) {
	t.Helper()
	var all []scaleWrite
	for _, u := range users {
		all = append(all, writes[u]...)
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].Time.Before(all[j].Time) })
	var order []string
	for _, w := range all {
		if n := len(order); n == 0 || order[n-1] != w.User {
			if slices.Contains(order, w.User) {
				var b bytes.Buffer
				for _, w := range all {
					fmt.Fprintln(&b, " ", w)
				}
				t.Errorf("%s wrote again after %s had taken over: two writers at once\n%s", w.User, order[len(order)-1], b.String())
				return
			}
			order = append(order, w.User)
		}
	}
	if !slices.Equal(order, users) {
		t.Errorf("writers took turns in the order %v, want %v", order, users)
	}
}

// auditedRequests counts the requests user sent that the API server
// received in [from, to), by verb and resource, from the audit log (one
// per audit ID: a watch is logged when it starts and when it ends).
func auditedRequests(t *testing.T, user string, from, to time.Time) map[string]int {
	t.Helper()
	f, err := os.Open(auditLog())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	seen := map[string]bool{}
	out := map[string]int{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var ev auditv1.Event
		if json.Unmarshal(sc.Bytes(), &ev) != nil { // only the last line may be half written
			continue
		}
		at := ev.RequestReceivedTimestamp.Time
		if ev.User.Username != user || at.Before(from) || !at.Before(to) || seen[string(ev.AuditID)] {
			continue
		}
		seen[string(ev.AuditID)] = true
		what := ev.RequestURI
		if i := strings.IndexByte(what, '?'); i >= 0 {
			what = what[:i]
		}
		if r := ev.ObjectRef; r != nil {
			what = r.Resource
			if r.APIGroup != "" {
				what += "." + r.APIGroup
			}
			if r.Subresource != "" {
				what += "/" + r.Subresource
			}
		}
		out[ev.Verb+" "+what]++
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestWatchesOutliveRequestTimeout: the opportunist's watches of pods,
// nodes, scalers and their targets are not cut at --request-timeout, which bounds one
// request: at 5,000 nodes the audit log had the pod watch made anew every
// 10 s (the default), each cut one resumed from where it stopped. With a 2 s
// timeout, over 12 s of rounds none of them is made again.
func TestWatchesOutliveRequestTimeout(t *testing.T) {
	requireEmptyCluster(t)
	c := installCRD(t)
	const ns = "e2e-watches"
	createNamespace(t, ns)
	// A scaler, so rounds run and the target cache watches its Deployment.
	createDeployment(t, ns, "worker", DeploymentSpec{Replicas: 0, Requests: requests("cpu", "100m", "memory", "128Mi")})
	createScaler(t, c, scalerFor(ns, "worker", "worker", 0, 2, map[corev1.ResourceName]v1alpha1.HeadroomValue{"cpu": "10%"}))
	id := newIdentity(t, "opportunist-watches", auditedGroup)
	o := startOpportunistAs(t, id, "opportunist", "--request-timeout=2s")
	o.waitFirstRound(t, time.Minute)
	from := time.Now()
	waitFor(t, time.Minute, "12 s of rounds (6 request timeouts)", func(ctx context.Context) (bool, error) {
		if _, err := o.rounds(ctx); err != nil {
			return false, err
		}
		if time.Since(from) < 12*time.Second {
			return false, fmt.Errorf("%s so far", time.Since(from).Round(time.Second))
		}
		return true, nil
	})
	to := time.Now()
	time.Sleep(auditTimeSlack)
	got := auditedRequests(t, id.User, from, to)
	// The audit log does record this user meanwhile: its /readyz probes.
	if got["get /readyz"] == 0 {
		t.Fatalf("no /readyz probe by %s in the audit log between %s and %s: %v", id.User, from.Format(time.TimeOnly), to.Format(time.TimeOnly), got)
	}
	for _, w := range []string{"watch pods", "watch nodes", "watch opportunisticscalers.opportunist.io", "watch horizontalpodautoscalers.autoscaling", "watch deployments.apps"} {
		if got[w] > 0 {
			t.Errorf("%s: %d new watches in %s with --request-timeout=2s, want none (each is cut and made again): %v", w, got[w], to.Sub(from).Round(time.Second), got)
		}
	}
}
