package volc

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func validConfig() Config {
	return Config{AccessKey: vecAK, SecretKey: vecSK, AppID: 123456}
}

func TestConfigDefaults(t *testing.T) {
	c := validConfig().withDefaults()
	if c.BaseURL != DefaultBaseURL || c.Region != "cn-north-1" || c.Service != "rtc" ||
		c.MaxBatch != 10 || c.Timeout != 10*time.Second || c.InboxType != 0 {
		t.Errorf("defaults: %v", c)
	}
	sg := Config{Region: "ap-southeast-1"}.withDefaults()
	if sg.BaseURL != "https://open-ap-singapore-1.volcengineapi.com" {
		t.Errorf("ap-southeast-1 base url = %q", sg.BaseURL)
	}
	kept := Config{Region: "ap-southeast-1", BaseURL: "http://127.0.0.1:1/volc"}.withDefaults()
	if kept.BaseURL != "http://127.0.0.1:1/volc" {
		t.Errorf("explicit base url replaced: %q", kept.BaseURL)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		mut     func(*Config)
		wantErr string // "" = valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"path prefix", func(c *Config) { c.BaseURL = "http://127.0.0.1:8090/volc" }, ""},
		{"max batch 1", func(c *Config) { c.MaxBatch = 1 }, ""},
		{"app id max int32", func(c *Config) { c.AppID = 1<<31 - 1 }, ""},
		{"no access key", func(c *Config) { c.AccessKey = "" }, "access key: required"},
		{"no secret key", func(c *Config) { c.SecretKey = "" }, "secret key: required"},
		{"no app id", func(c *Config) { c.AppID = 0 }, "app id"},
		{"app id over int32", func(c *Config) { c.AppID = 1 << 31 }, "app id"},
		{"negative inbox", func(c *Config) { c.InboxType = -1 }, "inbox type"},
		{"max batch 11", func(c *Config) { c.MaxBatch = 11 }, "max batch"},
		{"max batch negative", func(c *Config) { c.MaxBatch = -1 }, "max batch"},
		{"negative timeout", func(c *Config) { c.Timeout = -time.Second }, "timeout"},
		{"ftp scheme", func(c *Config) { c.BaseURL = "ftp://x" }, "scheme"},
		{"no host", func(c *Config) { c.BaseURL = "http://" }, "host required"},
		{"query", func(c *Config) { c.BaseURL = "http://h/?a=b" }, "query"},
		{"user info", func(c *Config) { c.BaseURL = "http://u:p@h/" }, "user info"},
		{"bad region", func(c *Config) { c.Region = "cn/north" }, "region"},
		{"bad service", func(c *Config) { c.Service = "r tc" }, "service"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := validConfig()
			tc.mut(&c)
			err := c.Validate()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tc.wantErr != "" && err == nil:
				t.Fatalf("Validate() = nil, want error containing %q", tc.wantErr)
			case tc.wantErr != "" && !strings.Contains(err.Error(), tc.wantErr):
				t.Fatalf("Validate() = %v, want it to contain %q", err, tc.wantErr)
			}
			if err != nil && !strings.HasPrefix(err.Error(), "volc: config: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
			if _, nerr := New(c, nil); (nerr == nil) != (err == nil) {
				t.Errorf("New error %v disagrees with Validate error %v", nerr, err)
			}
		})
	}
}

func TestConfigStringMasksSecrets(t *testing.T) {
	c := validConfig()
	c.BaseURL = "http://user:pa55word@h/"
	for _, s := range []string{c.String(), fmt.Sprintf("%v", c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c), fmt.Sprint(&c)} {
		for _, secret := range []string{vecSK, vecAK, "pa55word"} {
			if strings.Contains(s, secret) {
				t.Errorf("%q leaks %q", s, secret)
			}
		}
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("cfg", "cfg", c, "cred", Credentials{AccessKey: vecAK, SecretKey: vecSK})
	if strings.Contains(buf.String(), vecSK) || strings.Contains(buf.String(), vecAK) || !strings.Contains(buf.String(), "***") {
		t.Errorf("slog JSON output %q leaks a key or lacks the mask", buf.String())
	}
	if !strings.Contains(c.String(), "AppID:123456") {
		t.Errorf("String() = %q lacks the app id", c.String())
	}
}
