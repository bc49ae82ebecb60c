// Package docsection rewrites generated sections of a markdown file: the
// text between <!-- name:begin --> and <!-- name:end --> markers. The load
// test, the benchmark summary and the compare run write their tables into
// docs/PERFORMANCE.md this way, so generated figures are never pasted by
// hand.
package docsection
