//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/opportunist/opportunist/api/v1alpha1"
	"github.com/opportunist/opportunist/internal/forecast"
	"github.com/opportunist/opportunist/internal/history"
)

// officeHistory is days of a known daily shape of paid demand ending at
// end (a whole minute): cpu in milli-cores, peak at 13:00 on the history
// clock, low at night, and a gap of an hour (opportunist down) on the
// second day.
func officeHistory(end time.Time, days int, base, peak float64) *forecast.History {
	n := days * 1440
	start := end.Add(-time.Duration(n) * time.Minute)
	h := forecast.NewHistory(start, forecast.DefaultStep, 14*24*time.Hour)
	cpu, mem := make([]float64, n), make([]float64, n)
	for i := range n {
		at := start.Add(time.Duration(i) * time.Minute)
		cpu[i] = officeAt(at, base, peak)
		mem[i] = cpu[i] * (1 << 20) // 1Mi a milli-core: 4 cores, 4000Mi
	}
	for i := 1440 + 600; i < 1440+660; i++ {
		cpu[i], mem[i] = math.NaN(), math.NaN()
	}
	h.Demand[corev1.ResourceCPU] = cpu
	h.Demand[corev1.ResourceMemory] = mem
	return h
}

// officeAt is the shape: base, plus peak-base from 09:00 to 17:00 UTC.
func officeAt(at time.Time, base, peak float64) float64 {
	if h := at.UTC().Hour(); h >= 9 && h < 17 {
		return peak
	}
	return base
}

// persistedHistory reads and decodes the scaler's history ConfigMap.
func persistedHistory(ctx context.Context, ns, key string) (*forecast.History, error) {
	cm, err := client.CoreV1().ConfigMaps(ns).Get(ctx, history.ConfigMapName(key), metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	return history.Decode(cm.BinaryData[history.DataKey])
}

func knownSamples(h *forecast.History) int {
	n := 0
	for _, vs := range h.Demand {
		for _, v := range vs {
			if !math.IsNaN(v) {
				n++
			}
		}
	}
	return n
}

// TestHistorySurvivesFailover: a leader loads the persisted history of its
// scaler, records the paid demand it sees on top of it and saves it; killed,
// its standby takes over with that history, the recorded minutes and the
// persisted gap included, and records on.
func TestHistorySurvivesFailover(t *testing.T) {
	requireEmptyCluster(t)
	c := installCRD(t)
	ns := "e2e-history"
	createNamespace(t, ns)
	createNode(t, "history-1", NodeShape{CPU: "16", Memory: "64Gi", Pods: 110})
	createDeployment(t, ns, "paid", DeploymentSpec{Replicas: 2, Requests: requests("cpu", "2", "memory", "1Gi")})
	createDeployment(t, ns, "worker", DeploymentSpec{Replicas: 0, Requests: requests("cpu", "1", "memory", "64Mi")})
	waitForRunningPods(t, ns, "paid", 2)
	createScaler(t, c, scalerFor(ns, "worker", "worker", 0, 20, map[corev1.ResourceName]v1alpha1.HeadroomValue{"cpu": "2"}))
	key := ns + "/worker"

	// Two days of history ending now (the history clock starts at the
	// origin, now, and runs 60 times faster: a minute a second).
	origin := time.Now().UTC().Truncate(time.Minute)
	seeded := officeHistory(origin, 2, 2000, 6000)
	cm, err := history.ConfigMapOf(ns, key, seeded)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().ConfigMaps(ns).Create(context.Background(), cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Logf("seeded ConfigMap %s/%s: %d bytes for %d known samples", ns, cm.Name, len(cm.BinaryData[history.DataKey]), knownSamples(seeded))
	args := []string{"--round-interval", "1s", "--leader-elect", "--leader-election-namespace", ns,
		"--leader-election-lease-duration", "4s", "--leader-election-renew-deadline", "3s", "--leader-election-retry-period", "1s",
		"--history-save-interval", "2s", "--history-time-scale", "60", "--history-time-origin", origin.Format(time.RFC3339)}
	series := `opportunist_history_loaded_samples{scaler="` + key + `"}`

	leader := startOpportunistAs(t, identity{}, "leader", args...)
	leader.waitForMetrics(t, 30*time.Second, map[string]float64{series: float64(knownSamples(seeded))})
	standby := startOpportunistAs(t, identity{}, "standby", args...)

	// The leader records the paid demand it sees (2 x 2 cores, 2 x 1Gi) at
	// each history minute after the seeded end, and saves it.
	var saved *forecast.History
	waitFor(t, 60*time.Second, "the leader to save ten recorded minutes on top of the seeded history", func(ctx context.Context) (bool, error) {
		h, err := persistedHistory(ctx, ns, key)
		if err != nil {
			return false, err
		}
		saved = h
		return knownSamples(h) >= knownSamples(seeded)+2*10, fmt.Errorf("%d known samples, seeded %d", knownSamples(h), knownSamples(seeded))
	})
	if !saved.Start.Equal(seeded.Start) {
		t.Fatalf("saved history starts at %s, seeded at %s", saved.Start, seeded.Start)
	}
	for i, want := range seeded.Demand[corev1.ResourceCPU] {
		got := saved.Demand[corev1.ResourceCPU][i]
		if math.IsNaN(want) != math.IsNaN(got) || (!math.IsNaN(want) && got != want) {
			t.Fatalf("saved cpu[%d] = %v, seeded %v: the leader changed the past (a gap must stay a gap)", i, got, want)
		}
	}
	// Minutes before the leader's first round are gaps; the rest is what
	// it saw.
	seen := 0
	for i, v := range saved.Demand[corev1.ResourceCPU][seeded.Len():] {
		switch {
		case v == 4000:
			seen++
		case !math.IsNaN(v):
			t.Errorf("recorded cpu minute %d = %v, want 4000 (two paid pods of 2 cores) or a gap", i, v)
		}
	}
	if seen < 5 {
		t.Errorf("%d minutes recorded at 4000, want at least 5", seen)
	}
	if mem := saved.Demand[corev1.ResourceMemory]; mem[len(mem)-1] != 2<<30 {
		t.Errorf("recorded memory = %v, want 2Gi", mem[len(mem)-1])
	}

	// Kill the leader: nothing saved at exit. The standby leads once the
	// lease expires and loads exactly what was persisted.
	if err := leader.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-leader.done
	killed, err := persistedHistory(context.Background(), ns, key)
	if err != nil {
		t.Fatal(err)
	}
	took := standby.waitForMetrics(t, 30*time.Second, map[string]float64{series: float64(knownSamples(killed))})
	t.Logf("the standby loaded %d samples (%d seeded + %d recorded by the killed leader) %s after the kill",
		knownSamples(killed), knownSamples(seeded), knownSamples(killed)-knownSamples(seeded), took.Round(time.Millisecond))
	waitFor(t, 60*time.Second, "the new leader to record and save on top of it", func(ctx context.Context) (bool, error) {
		h, err := persistedHistory(ctx, ns, key)
		if err != nil {
			return false, err
		}
		if h.Len() < killed.Len()+5 {
			return false, fmt.Errorf("%d samples, %d at the kill", h.Len(), killed.Len())
		}
		if got := h.Demand[corev1.ResourceCPU][h.Len()-1]; got != 4000 {
			return false, fmt.Errorf("last cpu sample %v, want 4000", got)
		}
		if gaps := h.Series(corev1.ResourceCPU).Gaps(); gaps < 60 {
			return false, fmt.Errorf("%d cpu gaps, want the seeded hour at least", gaps)
		}
		return true, nil
	})
	// Whatever the standby's clock missed while the lease expired stays a
	// gap; it is not filled with zeros.
	final, _ := persistedHistory(context.Background(), ns, key)
	for i, v := range final.Demand[corev1.ResourceCPU][killed.Len():] {
		if v == 0 {
			t.Errorf("cpu sample %d after the failover is 0: a gap must not be a zero", killed.Len()+i)
		}
	}
	t.Logf("history after failover: %d samples, %d gaps, %s of ConfigMap data", final.Len(), final.Series(corev1.ResourceCPU).Gaps(), strconv.Itoa(len(mustEncode(t, final)))+" bytes")
}

func mustEncode(t *testing.T, h *forecast.History) []byte {
	t.Helper()
	b, err := history.Encode(h)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// backfillCores is the paid cpu (in cores) the backfill test's Prometheus
// holds for minute at: a different value every minute of the day.
func backfillCores(at time.Time) float64 {
	m := at.UTC().Hour()*60 + at.UTC().Minute()
	return 10 + float64(m%17)/4
}

// TestHistoryBackfillFromPrometheus: a scaler with no persisted history gets
// one from a real Prometheus (Debian's) holding two days of opportunist's
// own paid-demand series, written as TSDB blocks by promtool: the minutes
// Prometheus has are the history's, the ones it has not are gaps.
func TestHistoryBackfillFromPrometheus(t *testing.T) {
	requireEmptyCluster(t)
	c := installCRD(t)
	ns := "e2e-backfill"
	createNamespace(t, ns)
	createNode(t, "backfill-1", NodeShape{CPU: "16", Memory: "64Gi", Pods: 110})
	createDeployment(t, ns, "worker", DeploymentSpec{Replicas: 0, Requests: requests("cpu", "1", "memory", "64Mi")})
	createScaler(t, c, scalerFor(ns, "worker", "worker", 0, 20, map[corev1.ResourceName]v1alpha1.HeadroomValue{"cpu": "2"}))
	key := ns + "/worker"

	// Two days of samples, every minute, ending 30 minutes ago.
	bin := prometheusBinary(t)
	dir := filepath.Join(testDir(t), "prometheus")
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	end := time.Now().UTC().Truncate(time.Minute).Add(-30 * time.Minute)
	start := end.Add(-48 * time.Hour)
	var om strings.Builder
	om.WriteString("# TYPE opportunist_pool_requests gauge\n")
	for at := start; !at.After(end); at = at.Add(time.Minute) {
		fmt.Fprintf(&om, "opportunist_pool_requests{class=\"paid\",resource=\"cpu\",unit=\"core\"} %g %d\n", backfillCores(at), at.Unix())
	}
	for at := start; !at.After(end); at = at.Add(time.Minute) {
		fmt.Fprintf(&om, "opportunist_pool_requests{class=\"paid\",resource=\"memory\",unit=\"byte\"} %d %d\n", int64(backfillCores(at)*(1<<30)), at.Unix())
	}
	om.WriteString("# EOF\n")
	omPath := filepath.Join(dir, "history.om")
	if err := os.WriteFile(omPath, []byte(om.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	if out, err := exec.Command(filepath.Join(filepath.Dir(bin), "promtool"), "tsdb", "create-blocks-from", "openmetrics", omPath, data).CombinedOutput(); err != nil {
		t.Fatalf("promtool tsdb create-blocks-from openmetrics: %v\n%s", err, out)
	}
	configPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(configPath, []byte("global: {scrape_interval: 1m}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := freeAddress(t)
	p := startKEDAProcess(t, filepath.Dir(bin), filepath.Base(bin), nil,
		"--config.file="+configPath, "--storage.tsdb.path="+data, "--web.listen-address="+addr)
	promURL := "http://" + addr
	waitFor(t, 30*time.Second, "Prometheus to serve the written blocks", func(ctx context.Context) (bool, error) {
		if err := p.exited(); err != nil {
			return false, err
		}
		v, ok, err := promQuery(ctx, promURL, `count_over_time(opportunist_pool_requests{resource="cpu"}[3d])`)
		return ok && v == 48*60+1, err
	})

	startOpportunist(t, "--round-interval", "1s", "--leader-election-namespace", ns,
		"--history-save-interval", "2s", "--history-prometheus-url", promURL)
	var saved *forecast.History
	waitFor(t, 60*time.Second, "the backfilled history to be saved", func(ctx context.Context) (bool, error) {
		h, err := persistedHistory(ctx, ns, key)
		if err != nil {
			return false, err
		}
		saved = h
		return !h.Start.After(start), fmt.Errorf("history from %s, want from %s", h.Start, start)
	})
	cpu := saved.Series(corev1.ResourceCPU)
	mem := saved.Series(corev1.ResourceMemory)
	for at := start.Add(time.Minute); !at.After(end); at = at.Add(37 * time.Minute) {
		i := int(at.Sub(saved.Start) / time.Minute)
		if want := backfillCores(at) * 1000; cpu.Values[i] != want {
			t.Errorf("cpu at %s = %v, want %v (Prometheus' cores in milli-cores)", at.Format(time.RFC3339), cpu.Values[i], want)
		}
		if want := float64(int64(backfillCores(at) * (1 << 30))); mem.Values[i] != want {
			t.Errorf("memory at %s = %v, want %v", at.Format(time.RFC3339), mem.Values[i], want)
		}
	}
	// After Prometheus' last sample (and its 5-minute lookback) until
	// opportunist started: gaps, not zeros.
	i := int(end.Add(10*time.Minute).Sub(saved.Start) / time.Minute)
	if !math.IsNaN(cpu.Values[i]) {
		t.Errorf("cpu 10 minutes after Prometheus' last sample = %v, want a gap", cpu.Values[i])
	}
	t.Logf("backfilled %d cpu samples from %s; %d gaps", len(cpu.Values)-cpu.Gaps(), cpu.Start.Format(time.RFC3339), cpu.Gaps())
}
