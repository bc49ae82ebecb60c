package postgres

import (
	"errors"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// parseURL is the one parse of a database URL: Open uses it, and CheckURL
// runs it alone.
func parseURL(url string) (*pgxpool.Config, error) { return pgxpool.ParseConfig(url) }

// CheckURL reports, without connecting, whether Open would refuse url
// (syntax, unknown or malformed parameters such as pool_max_conns=abc). The
// error never contains the URL, so it cannot leak a password.
func CheckURL(url string) error {
	_, err := parseURL(url)
	if err == nil {
		return nil
	}
	var pe *pgconn.ParseConfigError
	if errors.As(err, &pe) && pe.Unwrap() != nil {
		return errors.New("not a valid pgx connection string: " + pe.Unwrap().Error())
	}
	return errors.New("not a valid pgx connection string")
}
