package testenv

import "testing"

func TestCI(t *testing.T) {
	for v, want := range map[string]bool{
		"": false, "true": true, "1": true, "TRUE": true, "t": true,
		"false": false, "0": false, "no": false, "yes": false,
	} {
		t.Setenv("CI", v)
		if got := CI(); got != want {
			t.Errorf("CI=%q: CI() = %v, want %v", v, got, want)
		}
	}
}
