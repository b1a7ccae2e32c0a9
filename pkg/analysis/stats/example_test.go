package stats

import "fmt"

func ExampleSuccessRateRule_Judge() {
	r := SuccessRateRule{MinSuccessRate: 99}
	for _, e := range []Evidence{
		{Canary: Counts{12, 0}, CanaryTotal: Counts{12, 0}},
		{Canary: Counts{40, 1}, Primary: Counts{360, 2}, CanaryTotal: Counts{40, 1}},
		{Canary: Counts{40, 1}, Primary: Counts{360, 2}, CanaryTotal: Counts{40, 1}, Final: true},
		{Canary: Counts{30, 6}, Primary: Counts{270, 1}, CanaryTotal: Counts{30, 6}},
		{Canary: Counts{600, 30}, Primary: Counts{5400, 27}, CanaryTotal: Counts{600, 30}},
	} {
		v, d := r.Judge(e)
		fmt.Printf("%v: %s\n", v, d)
	}
	// Output:
	// inconclusive: not enough requests to judge: 12 at this weight, 30 needed
	// passed: error rate 2.5% (1 of 40) at this weight, 2.5% (1 of 40) since the analysis started
	// inconclusive: not yet enough evidence to promote: error rate 2.5% (1 of 40), log-likelihood ratio 0.30 must fall to -4.60 to show it is below 3%
	// failed: canary error rate 20% (6 of 30) is measurably worse than the primary's 0.37% (1 of 270): p = 0.00021 < 0.001 against 2× the primary's rate
	// roll back: error rate 5% (30 of 600) since the analysis started is above the allowed 1% with confidence (log-likelihood ratio 21.33 ≥ 6.90)
}
