package sim

import "testing"

// Every strategy a user can pick is explained on the dashboard.
func TestPlainWordsForEveryStrategy(t *testing.T) {
	for _, name := range append(Strategies(), OpportunistPredictive) {
		t.Run(name, func(t *testing.T) {
			if PlainWords(name) == "" {
				t.Errorf("PlainWords(%q) is empty: add a sentence to plainWords in explain.go", name)
			}
		})
	}
}
