package main

import (
	"io"
	"testing"
	"time"
)

func TestParseArgs(t *testing.T) {
	env := map[string]string{"TODO_ADDR": "0.0.0.0:8080"}
	tests := []struct {
		args    []string
		want    options
		wantErr bool
	}{
		{nil, options{db: "todo.db", addr: "0.0.0.0:8080", waitTimeout: 2 * time.Second}, false},
		{[]string{"web", "-db", "postgres://x/y"}, options{mode: "web", db: "postgres://x/y", addr: "0.0.0.0:8080", waitTimeout: 2 * time.Second}, false},
		{[]string{"-db", "a.db", "processors", "-status-addr", ":9"}, options{mode: "processors", db: "a.db", addr: "0.0.0.0:8080", statusAddr: ":9", waitTimeout: 2 * time.Second}, false},
		{[]string{"migrate"}, options{mode: "migrate", db: "todo.db", addr: "0.0.0.0:8080", waitTimeout: 2 * time.Second}, false},
		{[]string{"serve"}, options{}, true},
		{[]string{"web", "extra"}, options{}, true},
		{[]string{"-nope"}, options{}, true},
		{[]string{"web", "-wait-timeout", "500ms"}, options{mode: "web", db: "todo.db", addr: "0.0.0.0:8080", waitTimeout: 500 * time.Millisecond}, false},
		{[]string{"-wait-timeout", "soon"}, options{}, true},
	}
	for _, tt := range tests {
		got, err := parseArgs(tt.args, func(k string) string { return env[k] }, io.Discard)
		if (err != nil) != tt.wantErr || (!tt.wantErr && got != tt.want) {
			t.Errorf("parseArgs(%q) = %+v, %v; want %+v, error %v", tt.args, got, err, tt.want, tt.wantErr)
		}
	}
}
