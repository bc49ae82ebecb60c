package main

import (
	"strings"
	"testing"
	"time"
)

func envOf(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

func TestConfigDefaults(t *testing.T) {
	c, err := loadConfig(envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Port != 8000 || c.MaxBodyBytes != 1<<20 || c.Telemetry.Mode != "noop" || c.RateLimitEnabled || c.CacheEnabled ||
		c.DatabaseURL != "" || c.ShutdownTimeout != 20*time.Second || c.Telemetry.SampleRate != 1 {
		t.Fatalf("defaults: %+v", c)
	}
	if c.CORS != nil || c.CORSOrigins != nil {
		t.Fatalf("CORS on by default: %v", c.CORSOrigins)
	}
	if !c.LoginLimitEnabled || c.LoginLimitAccount != 10 || c.LoginLimitIP != 50 || c.LoginLimitWindow != 5*time.Minute ||
		c.LoginLimitAttempts != 300 {
		t.Fatalf("login limit defaults: %+v", c)
	}
	if c.SignupLimitIP != 50 || c.SignupLimitWindow != 10*time.Minute || c.RateLimitIPv6Prefix != 64 ||
		c.RateLimitMemoryMaxKeys != 100_000 || c.HashConcurrency != 0 || c.HashQueue != 0 || c.HashWait != time.Second {
		t.Fatalf("issue 11 defaults: %+v", c)
	}
}

func TestConfigAbuseKnobs(t *testing.T) {
	c, err := loadConfig(envOf(map[string]string{
		"PASSWORD_HASH_CONCURRENCY": "4", "PASSWORD_HASH_QUEUE": "10", "PASSWORD_HASH_WAIT": "250ms",
		"SIGNUP_RATE_LIMIT_IP_REQUESTS": "0", "SIGNUP_RATE_LIMIT_WINDOW_SECONDS": "60",
		"LOGIN_RATE_LIMIT_IP_ATTEMPTS": "0", "RATE_LIMIT_IPV6_PREFIX": "56", "RATE_LIMIT_MEMORY_MAX_KEYS": "5000",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.HashConcurrency != 4 || c.HashQueue != 10 || c.HashWait != 250*time.Millisecond || c.SignupLimitIP != 0 ||
		c.SignupLimitWindow != time.Minute || c.LoginLimitAttempts != 0 || c.RateLimitIPv6Prefix != 56 || c.RateLimitMemoryMaxKeys != 5000 {
		t.Fatalf("%+v", c)
	}
}

func TestConfigMalformed(t *testing.T) {
	cases := map[string]map[string]string{
		"PORT":                             {"PORT": "eighty"},
		"MAX_BODY_BYTES":                   {"MAX_BODY_BYTES": "-5"},
		"TELEMETRY_MODE":                   {"TELEMETRY_MODE": "prometheus"},
		"TELEMETRY_SAMPLE_RATE":            {"TELEMETRY_SAMPLE_RATE": "1.5"},
		"RATE_LIMIT_ENABLED":               {"RATE_LIMIT_ENABLED": "maybe"},
		"SHUTDOWN_TIMEOUT":                 {"SHUTDOWN_TIMEOUT": "soon"},
		"DATABASE_URL":                     {"DATABASE_URL": "mysql://u:pw@h/db"},
		"LOG_LEVEL":                        {"LOG_LEVEL": "loud"},
		"JWT_SECRET":                       {"JWT_SECRET": "short"},
		"FIRST_SUPERUSER_PASSWORD":         {"FIRST_SUPERUSER_EMAIL": "a@b.co"},
		"ACCESS_TOKEN_EXPIRE_MINUTES":      {"ACCESS_TOKEN_EXPIRE_MINUTES": "0"},
		"TRUSTED_PROXIES":                  {"TRUSTED_PROXIES": "10.0.0.0/8, not-a-cidr"},
		"LOGIN_RATE_LIMIT_REQUESTS":        {"LOGIN_RATE_LIMIT_REQUESTS": "0"},
		"LOGIN_RATE_LIMIT_ENABLED":         {"LOGIN_RATE_LIMIT_ENABLED": "perhaps"},
		"LOGIN_RATE_LIMIT_IP_ATTEMPTS":     {"LOGIN_RATE_LIMIT_IP_ATTEMPTS": "-1"},
		"SIGNUP_RATE_LIMIT_IP_REQUESTS":    {"SIGNUP_RATE_LIMIT_IP_REQUESTS": "many"},
		"SIGNUP_RATE_LIMIT_WINDOW_SECONDS": {"SIGNUP_RATE_LIMIT_WINDOW_SECONDS": "0"},
		"PASSWORD_HASH_CONCURRENCY":        {"PASSWORD_HASH_CONCURRENCY": "-2"},
		"PASSWORD_HASH_QUEUE":              {"PASSWORD_HASH_QUEUE": "lots"},
		"PASSWORD_HASH_WAIT":               {"PASSWORD_HASH_WAIT": "a while"},
		"RATE_LIMIT_IPV6_PREFIX":           {"RATE_LIMIT_IPV6_PREFIX": "129"},
		"RATE_LIMIT_MEMORY_MAX_KEYS":       {"RATE_LIMIT_MEMORY_MAX_KEYS": "10"},
		"CORS_ALLOWED_ORIGINS":             {"CORS_ALLOWED_ORIGINS": "https://app.example.com/"},
		"CORS_ALLOW_CREDENTIALS":           {"CORS_ALLOWED_ORIGINS": "*", "CORS_ALLOW_CREDENTIALS": "true"},
		"CORS_ALLOWED_METHODS":             {"CORS_ALLOWED_METHODS": "GET, *"},
		"CORS_ALLOWED_HEADERS":             {"CORS_ALLOWED_HEADERS": "*"},
		"CORS_MAX_AGE_SECONDS":             {"CORS_MAX_AGE_SECONDS": "90000"},
	}
	for name, env := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := loadConfig(envOf(env))
			if err == nil {
				t.Fatal("accepted")
			}
			msg := err.Error()
			if !strings.Contains(msg, name) || strings.Contains(msg, "\n") {
				t.Fatalf("message %q should name %s on one line", msg, name)
			}
			if strings.Contains(msg, "pw@") {
				t.Fatalf("message leaks a password: %q", msg)
			}
		})
	}
}

func TestConfigCORS(t *testing.T) {
	c, err := loadConfig(envOf(map[string]string{"CORS_ALLOWED_ORIGINS": "https://App.example.com, http://localhost:5173",
		"CORS_ALLOW_CREDENTIALS": "true", "CORS_MAX_AGE_SECONDS": "0"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.CORS == nil || strings.Join(c.CORSOrigins, " ") != "https://app.example.com http://localhost:5173" {
		t.Fatalf("CORS %v, origins %q", c.CORS, c.CORSOrigins)
	}
	// A malformed CORS_* variable stops start-up even while CORS is off.
	if _, err := loadConfig(envOf(map[string]string{"CORS_ALLOWED_HEADERS": "a b"})); err == nil || !strings.Contains(err.Error(), "CORS_ALLOWED_HEADERS") {
		t.Fatalf("malformed header list with CORS off: %v", err)
	}
}

func TestConfigDurations(t *testing.T) {
	c, err := loadConfig(envOf(map[string]string{"SHUTDOWN_TIMEOUT": "3", "RATE_LIMIT_TIMEOUT": "25ms"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.ShutdownTimeout != 3*time.Second || c.RateLimitTimeout != 25*time.Millisecond {
		t.Fatalf("%v %v", c.ShutdownTimeout, c.RateLimitTimeout)
	}
}
