package redis

import (
	"errors"
	"net/url"

	goredis "github.com/redis/go-redis/v9"
)

// parseURL is the one parse of a Redis URL: New uses it, and CheckURL runs
// it alone.
func parseURL(url string) (*goredis.Options, error) { return goredis.ParseURL(url) }

// CheckURL reports, without connecting, whether New would refuse rawURL (an
// unknown scheme, a bad database number or query parameter). The error
// never contains the URL, so it cannot leak a password.
func CheckURL(rawURL string) error {
	_, err := parseURL(rawURL)
	var ue *url.Error
	if errors.As(err, &ue) {
		return errors.New("not a valid URL: " + ue.Err.Error())
	}
	return err
}
