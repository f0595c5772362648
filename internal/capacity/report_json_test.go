package capacity

import (
	"encoding/json"
	"maps"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// TestResourcesJSONNamesUnits: resource maps print their amounts under
// keys that name the unit, and read back the same.
func TestResourcesJSONNamesUnits(t *testing.T) {
	tests := []struct {
		name corev1.ResourceName
		key  string
	}{
		{corev1.ResourceCPU, "cpuMilliCores"},
		{corev1.ResourceMemory, "memoryBytes"},
		{corev1.ResourceEphemeralStorage, "ephemeral-storageBytes"},
		{"hugepages-2Mi", "hugepages-2MiBytes"},
		{corev1.ResourcePods, "pods"},
		{"nvidia.com/gpu", "nvidia.com/gpu"},
		{"example.com/memoryBytes", "example.com/memoryBytes"}, // a count whose name looks like a unit
	}
	for _, tt := range tests {
		t.Run(string(tt.name), func(t *testing.T) {
			in := Resources{tt.name: 1500}
			data, err := json.Marshal(in)
			if err != nil {
				t.Fatal(err)
			}
			var keys map[string]int64
			if err := json.Unmarshal(data, &keys); err != nil {
				t.Fatal(err)
			}
			if _, ok := keys[tt.key]; !ok || len(keys) != 1 {
				t.Errorf("JSON %s, want the key %q", data, tt.key)
			}
			var back Resources
			if err := json.Unmarshal(data, &back); err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(back, in) {
				t.Errorf("read back %v from %s, want %v", back, data, in)
			}
		})
	}
}

// TestResourceSummaryJSONNamesItsUnit: a row of the report says the unit of
// its amounts beside its name.
func TestResourceSummaryJSONNamesItsUnit(t *testing.T) {
	for name, unit := range map[corev1.ResourceName]string{corev1.ResourceCPU: "milliCores", corev1.ResourceMemory: "bytes", corev1.ResourcePods: "count"} {
		data, err := json.Marshal(ResourceSummary{Name: name, Capacity: 8000, Remaining: 100})
		if err != nil {
			t.Fatal(err)
		}
		var row map[string]any
		if err := json.Unmarshal(data, &row); err != nil {
			t.Fatal(err)
		}
		if row["name"] != string(name) || row["unit"] != unit || row["capacity"] != 8000.0 || row["remaining"] != 100.0 {
			t.Errorf("%s: JSON %s, want name %q, unit %q and the amounts", name, data, name, unit)
		}
	}
}
