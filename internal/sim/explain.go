package sim

// plainWords says what each strategy is for a reader who has never read
// the write-up: the dashboard shows it beside the strategy's numbers.
var plainWords = map[string]string{
	Opportunist: "this project's controller: it computes how many replicas fit in the room " +
		"that paid pods and the headroom leave, shrinks at once when paid pods need room, and grows with care.",
	HPAWriteup: "the stock HorizontalPodAutoscaler on the remaining-capacity metric, as the write-up ran it " +
		"(no behavior settings). Its formula assumes load per replica, which remaining capacity is not, so it overshoots and saws.",
	HPAExample: "the same stock HorizontalPodAutoscaler on the remaining-capacity metric, with the 30-second " +
		"scaling windows of the write-up's example manifest (examples/seed/hpa/worker-hpa.yaml).",
	HPAAverageValue: "a stock HorizontalPodAutoscaler that follows opportunist's answer " +
		"(the opportunist_desired_replicas metric, AverageValue 1): for clusters that keep the HPA.",
	OpportunistPredictive: "this project's controller, learning: it forecasts paid demand from the cluster's own past " +
		"(a daily or weekly pattern, when there is one) and hands room back before a predictable peak instead of after it.",
	InstantLaw: "the control law with perfect, instant knowledge and no stabilisation: " +
		"the yardstick harvest is measured against (its pods are virtual).",
}

// PlainWords says in one sentence, without the write-up's jargon, what a
// strategy is; "" for a strategy it has no words for.
func PlainWords(strategy string) string {
	return plainWords[strategy]
}
