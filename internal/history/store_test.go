package history

import (
	"context"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func TestConfigMapName(t *testing.T) {
	if got := ConfigMapName("batch/worker"); got != "opportunist-history.batch.worker" {
		t.Errorf("ConfigMapName = %q", got)
	}
	long := "batch/" + strings.Repeat("w", 250)
	got := ConfigMapName(long)
	if len(got) > 253 || !strings.HasPrefix(got, "opportunist-history.") || got == ConfigMapName("batch/"+strings.Repeat("v", 250)) {
		t.Errorf("ConfigMapName of a long key = %q: want a short, distinct, hashed name", got)
	}
}

func TestConfigMapStore(t *testing.T) {
	ctx := context.Background()
	client := fake.NewClientset(
		// Another's ConfigMap under a history's name, and a corrupt history.
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: ConfigMapName("batch/foreign"), Namespace: "opportunist"}, Data: map[string]string{"x": "y"}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: ConfigMapName("batch/broken"), Namespace: "opportunist",
			Labels: map[string]string{LabelHistory: "1"}, Annotations: map[string]string{AnnotationScaler: "batch/broken"}},
			BinaryData: map[string][]byte{DataKey: []byte("OPPHIST\x01garbage")}},
	)
	var logged []string
	s := &ConfigMapStore{Client: client, Namespace: "opportunist", Logf: func(f string, a ...any) { logged = append(logged, fmt.Sprintf(f, a...)) }}
	h := daily(14, 4)
	if err := s.Save(ctx, "batch/worker", h); err != nil {
		t.Fatal(err)
	}
	if err := s.Save(ctx, "batch/worker", h); err != nil { // an update
		t.Fatal(err)
	}
	got, problems, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got["batch/worker"] == nil {
		t.Fatalf("loaded %v, want batch/worker only", got)
	}
	sameHistory(t, got["batch/worker"], h)
	if len(problems) != 1 || !strings.Contains(problems[0].Error(), "opportunist-history.batch.broken") || !strings.Contains(problems[0].Error(), "corrupt") {
		t.Errorf("problems = %v, want one naming the corrupt ConfigMap", problems)
	}
	cm, _ := client.CoreV1().ConfigMaps("opportunist").Get(ctx, ConfigMapName("batch/worker"), metav1.GetOptions{})
	if len(cm.OwnerReferences) != 0 || cm.Labels[LabelHistory] != "1" || cm.Annotations[AnnotationScaler] != "batch/worker" {
		t.Errorf("ConfigMap meta = %+v: want labelled, annotated, no owner", cm.ObjectMeta)
	}

	if err := s.Save(ctx, "batch/foreign", h); err == nil || !strings.Contains(err.Error(), "not overwriting") {
		t.Errorf("Save over a foreign ConfigMap: err = %v", err)
	}
	if cm, _ := client.CoreV1().ConfigMaps("opportunist").Get(ctx, ConfigMapName("batch/foreign"), metav1.GetOptions{}); cm.Data["x"] != "y" || cm.BinaryData != nil {
		t.Errorf("the foreign ConfigMap was changed: %+v", cm)
	}
	if err := s.Save(ctx, "batch/broken", h); err != nil {
		t.Fatal(err)
	}
	if len(logged) != 1 || !strings.Contains(logged[0], "replacing") {
		t.Errorf("logged %q, want one line about replacing the corrupt history", logged)
	}

	for _, key := range []string{"batch/worker", "batch/foreign", "batch/gone"} {
		if err := s.Delete(ctx, key); err != nil {
			t.Fatal(err)
		}
	}
	left, _ := client.CoreV1().ConfigMaps("opportunist").List(ctx, metav1.ListOptions{})
	var names []string
	for _, cm := range left.Items {
		names = append(names, cm.Name)
	}
	if strings.Join(names, ",") != "opportunist-history.batch.broken,opportunist-history.batch.foreign" {
		t.Errorf("left %v: Delete removes the history only, never a foreign ConfigMap", names)
	}
}

func TestLoadMislabelled(t *testing.T) {
	data, _ := Encode(daily(1, 5))
	client := fake.NewClientset(
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "renamed", Namespace: "o", Labels: map[string]string{LabelHistory: "1"}, Annotations: map[string]string{AnnotationScaler: "a/b"}}, BinaryData: map[string][]byte{DataKey: data}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: ConfigMapName("a/c"), Namespace: "o", Labels: map[string]string{LabelHistory: "1"}}, BinaryData: map[string][]byte{DataKey: data}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: ConfigMapName("a/d"), Namespace: "o", Labels: map[string]string{LabelHistory: "1"}, Annotations: map[string]string{AnnotationScaler: "a/d"}}},
	)
	got, problems, err := (&ConfigMapStore{Client: client, Namespace: "o"}).Load(context.Background())
	if err != nil || len(got) != 0 || len(problems) != 3 {
		t.Errorf("Load = %v, %v, %v; want three problems (renamed, no annotation, no data) and nothing loaded", got, problems, err)
	}
}

func TestFake(t *testing.T) {
	ctx := context.Background()
	f := &Fake{}
	h := daily(1, 6)
	if err := f.Save(ctx, "a/b", h); err != nil {
		t.Fatal(err)
	}
	f.Data["a/c"] = []byte("nope")
	got, problems, err := f.Load(ctx)
	if err != nil || len(got) != 1 || len(problems) != 1 || f.SaveCount("a/b") != 1 {
		t.Fatalf("Load = %v, %v, %v", got, problems, err)
	}
	sameHistory(t, got["a/b"], h)
}
