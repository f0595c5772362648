package history

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"

	"github.com/opportunist/opportunist/internal/forecast"
)

// Store keeps one history per scaler, keyed "<namespace>/<name>".
//
// Load returns every history it could read; an object it could not read
// (corrupt, another version, not a scaler's) is one error in problems and
// is skipped, never fatal: the scaler starts with no history. err is set
// only when nothing could be listed. Save replaces one scaler's history.
// Delete removes it (no error when it is already gone).
type Store interface {
	Load(ctx context.Context) (histories map[string]*forecast.History, problems []error, err error)
	Save(ctx context.Context, key string, h *forecast.History) error
	Delete(ctx context.Context, key string) error
}

// Labels and annotations of the history ConfigMaps.
const (
	// LabelHistory marks a ConfigMap as a scaler's history; its value is
	// the encoding's version.
	LabelHistory = "opportunist.io/history"
	// AnnotationScaler names the scaler ("<namespace>/<name>"): a
	// ConfigMap's name cannot always hold it.
	AnnotationScaler = "opportunist.io/scaler"
	// DataKey is the binaryData key holding Encode's output.
	DataKey    = "history"
	namePrefix = "opportunist-history."
)

// ConfigMapName is the name of the ConfigMap holding a scaler's history:
// "opportunist-history.<namespace>.<name>" (a namespace has no dots, so
// this is unambiguous), or, when that is too long for a name, the prefix
// and a hash of the key.
func ConfigMapName(key string) string {
	name := namePrefix + strings.Replace(key, "/", ".", 1)
	if len(validation.IsDNS1123Subdomain(name)) == 0 {
		return name
	}
	sum := sha256.Sum256([]byte(key))
	return namePrefix + hex.EncodeToString(sum[:16])
}

// ConfigMapStore keeps histories as ConfigMaps in one namespace
// (opportunist's own), labelled LabelHistory, with no owner: a scaler's
// history must outlive the controller's restarts. The encoded history is
// in binaryData[DataKey].
type ConfigMapStore struct {
	Client    kubernetes.Interface
	Namespace string
	// Logf reports what a Save overwrote that it had not written (a corrupt
	// object, another version): such an object is replaced, never silently.
	Logf func(format string, args ...any)
}

// Load lists the history ConfigMaps and decodes each.
func (s *ConfigMapStore) Load(ctx context.Context) (map[string]*forecast.History, []error, error) {
	list, err := s.Client.CoreV1().ConfigMaps(s.Namespace).List(ctx, metav1.ListOptions{LabelSelector: LabelHistory})
	if err != nil {
		return nil, nil, fmt.Errorf("listing the history ConfigMaps in namespace %s: %w", s.Namespace, err)
	}
	out := map[string]*forecast.History{}
	var problems []error
	for i := range list.Items {
		cm := &list.Items[i]
		key, h, err := decodeConfigMap(cm)
		if err != nil {
			problems = append(problems, fmt.Errorf("ConfigMap %s/%s: %w (ignored: that scaler starts without history)", cm.Namespace, cm.Name, err))
			continue
		}
		out[key] = h
	}
	return out, problems, nil
}

func decodeConfigMap(cm *corev1.ConfigMap) (string, *forecast.History, error) {
	key := cm.Annotations[AnnotationScaler]
	if ns, name, ok := strings.Cut(key, "/"); !ok || ns == "" || name == "" {
		return "", nil, fmt.Errorf("annotation %s is %q, want <namespace>/<name>", AnnotationScaler, key)
	}
	if ConfigMapName(key) != cm.Name {
		return "", nil, fmt.Errorf("named %s but annotated for scaler %s (whose history is %s)", cm.Name, key, ConfigMapName(key))
	}
	data, ok := cm.BinaryData[DataKey]
	if !ok {
		return "", nil, fmt.Errorf("no binaryData.%s", DataKey)
	}
	h, err := Decode(data)
	if err != nil {
		return "", nil, err
	}
	return key, h, nil
}

// Save writes one scaler's history, creating its ConfigMap if needed. A
// ConfigMap of that name that is not a history (no LabelHistory) is left
// alone and is an error; a history that does not decode is replaced, with a
// log line.
func (s *ConfigMapStore) Save(ctx context.Context, key string, h *forecast.History) error {
	data, err := Encode(h)
	if err != nil {
		return fmt.Errorf("encoding the history of %s: %w", key, err)
	}
	cms := s.Client.CoreV1().ConfigMaps(s.Namespace)
	name := ConfigMapName(key)
	cm, err := cms.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = cms.Create(ctx, s.configMap(key, data), metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("creating ConfigMap %s/%s (history of %s): %w", s.Namespace, name, key, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading ConfigMap %s/%s (history of %s): %w", s.Namespace, name, key, err)
	}
	if _, ok := cm.Labels[LabelHistory]; !ok {
		return fmt.Errorf("ConfigMap %s/%s exists and is not a history (no label %s): not overwriting it; delete or rename it to keep the history of %s", s.Namespace, name, LabelHistory, key)
	}
	if _, _, err := decodeConfigMap(cm); err != nil && s.Logf != nil {
		s.Logf("replacing ConfigMap %s/%s, which did not read as the history of %s: %v", s.Namespace, name, key, err)
	}
	next := s.configMap(key, data)
	next.ResourceVersion = cm.ResourceVersion
	next.Labels = mergeMaps(cm.Labels, next.Labels)
	next.Annotations = mergeMaps(cm.Annotations, next.Annotations)
	if _, err := cms.Update(ctx, next, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("updating ConfigMap %s/%s (history of %s): %w", s.Namespace, name, key, err)
	}
	return nil
}

// Delete removes one scaler's history, only if it is a history.
func (s *ConfigMapStore) Delete(ctx context.Context, key string) error {
	cms := s.Client.CoreV1().ConfigMaps(s.Namespace)
	name := ConfigMapName(key)
	cm, err := cms.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading ConfigMap %s/%s (history of %s): %w", s.Namespace, name, key, err)
	}
	if _, ok := cm.Labels[LabelHistory]; !ok {
		return nil // not ours
	}
	err = cms.Delete(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &cm.UID}})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting ConfigMap %s/%s (history of %s): %w", s.Namespace, name, key, err)
	}
	return nil
}

func (s *ConfigMapStore) configMap(key string, data []byte) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{
			Name:      ConfigMapName(key),
			Namespace: s.Namespace,
			Labels: map[string]string{
				LabelHistory:                   fmt.Sprint(Version),
				"app.kubernetes.io/managed-by": "opportunist",
			},
			Annotations: map[string]string{AnnotationScaler: key},
		},
		BinaryData: map[string][]byte{DataKey: data},
	}
}

// ConfigMapOf returns the ConfigMap Save would write for a scaler's
// history in namespace: for tests and tools that seed a history.
func ConfigMapOf(namespace, key string, h *forecast.History) (*corev1.ConfigMap, error) {
	data, err := Encode(h)
	if err != nil {
		return nil, err
	}
	return (&ConfigMapStore{Namespace: namespace}).configMap(key, data), nil
}

func mergeMaps(old, next map[string]string) map[string]string {
	out := maps.Clone(old)
	if out == nil {
		out = map[string]string{}
	}
	maps.Copy(out, next)
	return out
}

// Fake is an in-memory Store. It keeps the encoded form, so what it
// returns went through Encode and Decode as a real Store's would.
type Fake struct {
	mu   sync.Mutex
	Data map[string][]byte
	// Saves counts the Save calls, per key.
	Saves map[string]int
	// Err, when set, is returned by every call.
	Err error
}

// Load decodes every kept history.
func (f *Fake) Load(context.Context) (map[string]*forecast.History, []error, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Err != nil {
		return nil, nil, f.Err
	}
	out := map[string]*forecast.History{}
	var problems []error
	for _, key := range slices.Sorted(maps.Keys(f.Data)) {
		h, err := Decode(f.Data[key])
		if err != nil {
			problems = append(problems, fmt.Errorf("%s: %w", key, err))
			continue
		}
		out[key] = h
	}
	return out, problems, nil
}

// Save encodes and keeps h.
func (f *Fake) Save(_ context.Context, key string, h *forecast.History) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Err != nil {
		return f.Err
	}
	data, err := Encode(h)
	if err != nil {
		return err
	}
	if f.Data == nil {
		f.Data, f.Saves = map[string][]byte{}, map[string]int{}
	}
	f.Data[key] = data
	f.Saves[key]++
	return nil
}

// Delete forgets a key.
func (f *Fake) Delete(_ context.Context, key string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Err != nil {
		return f.Err
	}
	delete(f.Data, key)
	return nil
}

// SaveCount returns how many times key was saved.
func (f *Fake) SaveCount(key string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.Saves[key]
}
