package deploy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/pginflux/pginflux/config"
)

// yamlDocs parses every document of a YAML file.
func yamlDocs(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var docs []map[string]any
	dec := yaml.NewDecoder(f)
	for {
		var d map[string]any
		err := dec.Decode(&d)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if d != nil {
			docs = append(docs, d)
		}
	}
	return docs
}

// dig follows keys (strings for maps, ints for lists) into v.
func dig(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func str(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case int:
		return strconv.Itoa(v)
	case nil:
		return ""
	}
	return ""
}

// checkEnv checks that every PGINFLUX_* variable names a real flag, and
// that pginflux accepts the whole environment as its configuration.
func checkEnv(t *testing.T, where string, env map[string]string) config.Config {
	t.Helper()
	known := map[string]bool{}
	for _, f := range config.Flags() {
		known[f.Env] = true
	}
	for k := range env {
		if strings.HasPrefix(k, "PGINFLUX_") && !known[k] {
			t.Errorf("%s: %s is no pginflux flag's variable", where, k)
		}
	}
	cfg, err := config.Parse(nil, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Errorf("%s: pginflux refuses this environment: %v", where, err)
	}
	return cfg
}

func port(t *testing.T, addr string) string {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("address %q: %v", addr, err)
	}
	return p
}

func TestEveryYAMLParses(t *testing.T) {
	files, _ := filepath.Glob("*.y*ml")
	if len(files) < 2 {
		t.Fatalf("found %v, want the compose file and the Kubernetes example", files)
	}
	for _, f := range files {
		if len(yamlDocs(t, f)) == 0 {
			t.Errorf("%s holds no document", f)
		}
	}
}

// composeDefaults replaces ${VAR:-default} with its default, as compose
// does when VAR is unset.
var composeVar = regexp.MustCompile(`\$\{[A-Za-z_][A-Za-z0-9_]*:-([^}]*)\}`)

func TestCompose(t *testing.T) {
	docs := yamlDocs(t, "docker-compose.yml")
	if len(docs) != 1 {
		t.Fatalf("got %d documents, want 1", len(docs))
	}
	c := docs[0]
	for _, s := range []string{"postgres", "pginflux", "telegraf"} {
		if dig(c, "services", s) == nil {
			t.Errorf("no service %s", s)
		}
	}

	env := map[string]string{}
	e, _ := dig(c, "services", "pginflux", "environment").(map[string]any)
	for k, v := range e {
		env[k] = composeVar.ReplaceAllString(str(v), "$1")
	}
	cfg := checkEnv(t, "docker-compose.yml pginflux", env)
	if cfg.UDPAddress == "" || cfg.HTTPAddress == "" {
		t.Fatalf("pginflux in compose must listen on UDP and HTTP: %+v", cfg)
	}
	// Compose's own variables and the database URL agree.
	if !strings.Contains(env["PGINFLUX_DATABASE_URL"], "@postgres:5432/") {
		t.Errorf("PGINFLUX_DATABASE_URL %q does not point at the postgres service", env["PGINFLUX_DATABASE_URL"])
	}

	ports, _ := dig(c, "services", "pginflux", "ports").([]any)
	var udp, http bool
	for _, p := range ports {
		s := str(p)
		udp = udp || strings.HasSuffix(s, ":"+port(t, cfg.UDPAddress)+"/udp")
		http = http || strings.HasSuffix(s, ":"+port(t, cfg.HTTPAddress))
	}
	if !udp || !http {
		t.Errorf("ports %v: want the UDP port %s/udp and the HTTP port %s published", ports, port(t, cfg.UDPAddress), port(t, cfg.HTTPAddress))
	}

	hc, _ := dig(c, "services", "pginflux", "healthcheck", "test").([]any)
	var test []string
	for _, a := range hc {
		test = append(test, str(a))
	}
	if len(test) < 3 || test[0] != "CMD" || test[1] != "/usr/local/bin/pginflux" || test[2] != "healthcheck" {
		t.Errorf("healthcheck %q: want CMD /usr/local/bin/pginflux healthcheck (the image has no shell)", test)
	}
	for _, a := range test {
		if strings.HasPrefix(a, "http://") && !strings.Contains(a, ":"+port(t, cfg.HTTPAddress)+"/") {
			t.Errorf("healthcheck URL %s is not on the HTTP port %s", a, port(t, cfg.HTTPAddress))
		}
	}
	if g := str(dig(c, "services", "pginflux", "stop_grace_period")); g != "" {
		d, err := time.ParseDuration(g)
		if err != nil || d <= cfg.ShutdownTimeout {
			t.Errorf("stop_grace_period %s: want more than --shutdown-timeout %s", g, cfg.ShutdownTimeout)
		}
	}
	if ctx := str(dig(c, "services", "pginflux", "build", "context")); ctx != "" {
		if _, err := os.Stat(filepath.Join(ctx, "Dockerfile")); err != nil {
			t.Errorf("build context %s has no Dockerfile: %v", ctx, err)
		}
	}

	// Telegraf mounts the telegraf.conf beside this file.
	vols, _ := dig(c, "services", "telegraf", "volumes").([]any)
	mounted := false
	for _, v := range vols {
		src, _, _ := strings.Cut(str(v), ":")
		if filepath.Base(src) == "telegraf.conf" {
			if _, err := os.Stat(src); err != nil {
				t.Errorf("telegraf mounts %s: %v", src, err)
			}
			mounted = true
		}
	}
	if !mounted {
		t.Error("the telegraf service does not mount telegraf.conf")
	}
}

func TestKubernetesSidecar(t *testing.T) {
	docs := yamlDocs(t, "kubernetes-sidecar.yaml")
	secrets := map[string]map[string]any{}
	var deployment map[string]any
	for _, d := range docs {
		switch d["kind"] {
		case "Secret":
			sd, _ := d["stringData"].(map[string]any)
			secrets[str(dig(d, "metadata", "name"))] = sd
		case "Deployment":
			deployment = d
		}
	}
	if deployment == nil {
		t.Fatal("no Deployment")
	}
	spec := dig(deployment, "spec", "template", "spec")
	var containers []any
	for _, k := range []string{"initContainers", "containers"} {
		l, _ := dig(spec, k).([]any)
		containers = append(containers, l...)
	}
	var sidecar, app map[string]any
	for _, c := range containers {
		c := c.(map[string]any)
		if strings.Contains(str(c["image"]), "pginflux") {
			sidecar = c
		} else {
			app = c
		}
	}
	if sidecar == nil || app == nil {
		t.Fatal("want an app container and a pginflux sidecar")
	}

	env := map[string]string{}
	l, _ := sidecar["env"].([]any)
	for _, e := range l {
		name := str(dig(e, "name"))
		if ref := dig(e, "valueFrom", "secretKeyRef"); ref != nil {
			s, ok := secrets[str(dig(ref, "name"))]
			v, found := s[str(dig(ref, "key"))]
			if !ok || !found {
				t.Errorf("%s comes from secret %v, which this file does not define", name, ref)
			}
			env[name] = str(v)
			continue
		}
		env[name] = str(dig(e, "value"))
	}
	if env["DATABASE_URL"] == "" && env["PGINFLUX_DATABASE_URL"] == "" {
		t.Error("the sidecar gets no database URL")
	}
	cfg := checkEnv(t, "kubernetes-sidecar.yaml pginflux", env)

	// Probes: /healthz for liveness, /readyz for readiness, on the port
	// pginflux serves HTTP on.
	httpPort := port(t, cfg.HTTPAddress)
	ports := map[string]string{}
	pl, _ := sidecar["ports"].([]any)
	for _, p := range pl {
		ports[str(dig(p, "name"))] = str(dig(p, "containerPort"))
	}
	for probe, path := range map[string]string{"livenessProbe": "/healthz", "readinessProbe": "/readyz"} {
		g := dig(sidecar, probe, "httpGet")
		if got := str(dig(g, "path")); got != path {
			t.Errorf("%s path %q, want %s", probe, got, path)
		}
		p := str(dig(g, "port"))
		if named, ok := ports[p]; ok {
			p = named
		}
		if p != httpPort {
			t.Errorf("%s port %q is not the HTTP port %s", probe, p, httpPort)
		}
	}
	if g, _ := dig(spec, "terminationGracePeriodSeconds").(int); time.Duration(g)*time.Second <= cfg.ShutdownTimeout {
		t.Errorf("terminationGracePeriodSeconds %d: want more than --shutdown-timeout %s", g, cfg.ShutdownTimeout)
	}
	if u := str(dig(sidecar, "securityContext", "runAsUser")); u != "65532" {
		t.Errorf("runAsUser %q, want 65532 (distroless nonroot)", u)
	}
}

// telegrafOutputs reads telegraf.conf just enough to list its (not
// commented out) sections and their key = value settings.
func telegrafSections(t *testing.T) []map[string]string {
	t.Helper()
	f, err := os.Open("telegraf.conf")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]string
	header := regexp.MustCompile(`^\[\[?([a-z0-9_.]+)\]\]?$`)
	kv := regexp.MustCompile(`^([a-z0-9_]+)\s*=\s*(.+)$`)
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case header.MatchString(line):
			out = append(out, map[string]string{"[section]": header.FindStringSubmatch(line)[1]})
		case kv.MatchString(line) && len(out) > 0:
			m := kv.FindStringSubmatch(line)
			out[len(out)-1][m[1]] = strings.Trim(m[2], `"`)
		default:
			t.Errorf("telegraf.conf:%d: cannot read %q", n, line)
		}
	}
	return out
}

func TestTelegrafConf(t *testing.T) {
	compose := yamlDocs(t, "docker-compose.yml")[0]
	env, _ := dig(compose, "services", "pginflux", "environment").(map[string]any)
	want := "udp://pginflux:" + port(t, str(env["PGINFLUX_UDP_ADDRESS"]))

	var inputs, outputs []string
	for _, s := range telegrafSections(t) {
		name := s["[section]"]
		switch {
		case strings.HasPrefix(name, "inputs."):
			inputs = append(inputs, name)
		case name == "outputs.socket_writer":
			outputs = append(outputs, name)
			if s["address"] != want || s["data_format"] != "influx" {
				t.Errorf("socket_writer: address %q data_format %q, want %s and influx", s["address"], s["data_format"], want)
			}
		case name == "outputs.influxdb":
			outputs = append(outputs, name)
			if s["urls"] != `["`+want+`"]` {
				t.Errorf("influxdb output: urls %s, want [%q]", s["urls"], want)
			}
		case strings.HasPrefix(name, "outputs."):
			outputs = append(outputs, name)
		}
	}
	if strings.Join(inputs, " ") != "inputs.cpu inputs.mem" {
		t.Errorf("got inputs %v, want cpu and mem", inputs)
	}
	if len(outputs) != 1 {
		t.Errorf("got outputs %v, want exactly one (two would write every metric twice)", outputs)
	}
}

func TestSystemdUnit(t *testing.T) {
	unit, err := os.ReadFile("pginflux.service")
	if err != nil {
		t.Fatal(err)
	}
	settings := map[string][]string{}
	for _, line := range strings.Split(string(unit), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			settings[k] = append(settings[k], v)
		}
	}
	for k, want := range map[string]string{
		"ExecStart":                "/usr/local/bin/pginflux",
		"EnvironmentFile":          "-/etc/default/pginflux",
		"DynamicUser":              "yes",
		"NoNewPrivileges":          "yes",
		"ProtectSystem":            "strict",
		"CapabilityBoundingSet":    "",
		"RestrictAddressFamilies":  "AF_INET AF_INET6 AF_UNIX",
		"RestartPreventExitStatus": "2",
	} {
		if got := settings[k]; len(got) != 1 || got[0] != want {
			t.Errorf("%s=%q, want %q", k, got, want)
		}
	}
	for _, v := range settings["Environment"] {
		name, _, _ := strings.Cut(v, "=")
		checkEnv(t, "pginflux.service", map[string]string{name: "x"})
	}
	if d, err := time.ParseDuration(strings.Join(settings["TimeoutStopSec"], "")); err != nil || d <= 30*time.Second {
		t.Errorf("TimeoutStopSec=%v: want more than --shutdown-timeout", settings["TimeoutStopSec"])
	}

	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("no systemd-analyze here; the unit was not verified by systemd")
	}
	// verify insists that ExecStart exists: point it at this test binary.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "pginflux.service")
	if err := os.WriteFile(path, bytes.ReplaceAll(unit, []byte("ExecStart=/usr/local/bin/pginflux"), []byte("ExecStart="+self)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(t.Context(), analyze, "verify", path).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	// The exposure score of the hardening, where this systemd can tell it
	// offline (systemd 250 and later).
	out, err = exec.CommandContext(t.Context(), analyze, "security", "--offline=yes", "--threshold=20", "--no-pager", path).CombinedOutput()
	if err != nil {
		t.Logf("systemd-analyze security --offline: %v (not checked)", err)
		return
	}
	m := regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		t.Logf("systemd-analyze security printed no exposure level (not checked)")
		return
	}
	if score, _ := strconv.ParseFloat(string(m[1]), 64); score > 2.0 {
		t.Errorf("systemd-analyze security: exposure %s, want at most 2.0 (OK)", m[1])
	}
}

// TestDockerfile checks what can be checked without a Docker engine: the
// image's build command is make build's, and the image is static,
// non-root, exposes both ports and checks its own health.
func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	df := strings.ReplaceAll(string(b), "\\\n", " ")
	build := regexp.MustCompile(`CGO_ENABLED=0 go build [^\n]*`).FindString(df)
	if build == "" {
		t.Fatal("the Dockerfile has no CGO_ENABLED=0 go build")
	}
	for _, want := range []string{
		"FROM gcr.io/distroless/static-debian12:nonroot",
		"USER nonroot:nonroot",
		`HEALTHCHECK `,
		`CMD ["/usr/local/bin/pginflux", "healthcheck"]`,
		`ENTRYPOINT ["/usr/local/bin/pginflux"]`,
		"org.opencontainers.image.version=\"${VERSION}\"",
	} {
		if !strings.Contains(df, want) {
			t.Errorf("the Dockerfile lacks %s", want)
		}
	}
	expose := regexp.MustCompile(`(?m)^EXPOSE (.*)$`).FindStringSubmatch(df)
	if expose == nil || !strings.Contains(expose[1], "8089/udp") || !strings.Contains(expose[1], "8086") {
		t.Errorf("EXPOSE %v: want 8089/udp and 8086", expose)
	}
	env := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^ENV (.*)$`).FindAllStringSubmatch(df, -1) {
		for _, kv := range strings.Fields(m[1]) {
			k, v, _ := strings.Cut(kv, "=")
			if strings.HasPrefix(k, "PGINFLUX_") {
				env[k] = v
			}
		}
	}
	checkEnv(t, "Dockerfile", env)

	// make build runs the same command, with only the output path and the
	// version's quoting told apart.
	mk, err := exec.LookPath("make")
	if err != nil {
		t.Skip("no make here; the Makefile's build command was not compared")
	}
	out, err := exec.CommandContext(t.Context(), mk, "-s", "-n", "-C", "..", "build", "VERSION=v", "GO=go").Output()
	if err != nil {
		t.Fatalf("make -n build: %v", err)
	}
	normalize := func(s string) string {
		s = strings.NewReplacer(`"`, "", `'`, "", "${VERSION}", "v", "/out/pginflux", "OUT", "bin/pginflux", "OUT").Replace(s)
		return strings.Join(strings.Fields(s), " ")
	}
	if got, want := normalize(string(out)), normalize(build); got != want {
		t.Errorf("make build runs\n\t%s\nthe Dockerfile\n\t%s", got, want)
	}
}
