// Package infra checks the deployment files in this directory against what
// amber really accepts: the compose stack, the example env files, the
// systemd units and the Dockerfile's build command.
package infra

import (
	"bufio"
	"bytes"
	"debug/elf"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"go.yaml.in/yaml/v3"

	"amber/internal/config"
)

var commands = map[string]config.Command{
	"build": config.Build, "serve": config.Serve, "snapshot": config.Snapshot, "rpc": config.RPC,
}

// optionNames are the environment variables cmd reads, from the option
// table amber prints for `amber CMD --help`.
func optionNames(t *testing.T, cmd config.Command) map[string]bool {
	t.Helper()
	var buf bytes.Buffer
	config.WriteUsage(&buf, cmd)
	names := map[string]bool{}
	for _, m := range regexp.MustCompile(`\$([A-Z][A-Z0-9_]*)`).FindAllStringSubmatch(buf.String(), -1) {
		names[m[1]] = true
	}
	if len(names) < 5 {
		t.Fatalf("found only %d options for amber %s in its usage", len(names), cmd)
	}
	return names
}

// credentialNames are the bucket credential variables the object store
// opener reads besides the options (snapshot/objstore/open).
func credentialNames(t *testing.T) map[string]bool {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("..", "snapshot", "objstore", "open", "open.go"))
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, m := range regexp.MustCompile(`getenv\("([A-Z0-9_]+)"\)`).FindAllStringSubmatch(string(src), -1) {
		names[m[1]] = true
	}
	return names
}

// checkInvocation loads cmd with args and env exactly as amber would and
// returns the config; unknown names and bad values fail the test.
func checkInvocation(t *testing.T, where string, args []string, env map[string]string) (config.Command, *config.Config) {
	t.Helper()
	if len(args) == 0 {
		t.Fatalf("%s: no amber command", where)
	}
	cmd, ok := commands[args[0]]
	if !ok {
		t.Fatalf("%s: %q is not an amber command", where, args[0])
	}
	allowed := optionNames(t, cmd)
	creds := credentialNames(t)
	for name := range env {
		if !allowed[name] && !creds[name] {
			t.Errorf("%s: amber %s does not read %s", where, cmd, name)
		}
	}
	cfg, err := config.Load(cmd, args[1:], func(k string) string { return env[k] }, &bytes.Buffer{})
	if err != nil {
		t.Fatalf("%s: amber %s %s: %v", where, cmd, strings.Join(args[1:], " "), err)
	}
	return cmd, cfg
}

func port(t *testing.T, hostport string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(hostport)
	if err != nil {
		t.Fatalf("%q: %v", hostport, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatalf("%q: %v", hostport, err)
	}
	return n
}

type composeFile struct {
	Services map[string]struct {
		Build       any               `yaml:"build"`
		Image       string            `yaml:"image"`
		Command     []string          `yaml:"command"`
		Environment map[string]string `yaml:"environment"`
		Ports       []string          `yaml:"ports"`
		Volumes     []string          `yaml:"volumes"`
		Secrets     []string          `yaml:"secrets"`
	} `yaml:"services"`
	Secrets map[string]struct {
		File string `yaml:"file"`
	} `yaml:"secrets"`
}

// requiredVar matches compose's ${NAME:?message}: compose refuses to start
// while NAME is unset or empty.
var requiredVar = regexp.MustCompile(`^\$\{([A-Z0-9_]+):\?[^}]+\}$`)

// composeEnv returns env with each ${NAME:?...} replaced by sample[NAME],
// as compose would with the operator's value, and the names so required.
func composeEnv(t *testing.T, env map[string]string, sample map[string]string) (map[string]string, map[string]bool) {
	t.Helper()
	out := map[string]string{}
	required := map[string]bool{}
	for k, v := range env {
		if m := requiredVar.FindStringSubmatch(v); m != nil {
			if sample[m[1]] == "" {
				t.Fatalf("compose requires ${%s}, which the test has no sample for", m[1])
			}
			required[k] = true
			v = sample[m[1]]
		}
		out[k] = v
	}
	return out, required
}

func TestComposeMatchesAmber(t *testing.T) {
	b, err := os.ReadFile("compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cf composeFile
	if err := yaml.Unmarshal(b, &cf); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	amberImage := ""
	for _, s := range cf.Services {
		if s.Build != nil {
			amberImage = s.Image
		}
	}
	if amberImage == "" {
		t.Fatal("no service builds the amber image")
	}
	httpPorts := map[string]int{} // service -> HTTP_ADDR port, where not loopback
	count := map[config.Command]int{}
	for name, s := range cf.Services {
		if s.Image != amberImage {
			continue
		}
		env, required := composeEnv(t, s.Environment, map[string]string{"SNAPSHOT_TRUSTED_KEYS": strings.Repeat("3b", 32)})
		cmd, cfg := checkInvocation(t, "service "+name, s.Command, env)
		count[cmd]++
		// Production examples accept only signed snapshots: servers need
		// the operator's trusted key to start, the builder signs with a
		// key mounted as a compose secret.
		switch cmd {
		case config.Serve:
			if !required["SNAPSHOT_TRUSTED_KEYS"] || len(cfg.TrustedKeys) == 0 {
				t.Errorf("service %s: SNAPSHOT_TRUSTED_KEYS = %q, want ${SNAPSHOT_TRUSTED_KEYS:?...} so compose refuses to start without a key", name, s.Environment["SNAPSHOT_TRUSTED_KEYS"])
			}
		case config.Build:
			secret, ok := strings.CutPrefix(cfg.SigningKeyFile, "/run/secrets/")
			if !ok || !slices.Contains(s.Secrets, secret) || cf.Secrets[secret].File == "" {
				t.Errorf("service %s: SNAPSHOT_SIGNING_KEY_FILE = %q, want /run/secrets/<a secret of the service with a file>", name, cfg.SigningKeyFile)
			}
		}
		listening := map[int]bool{}
		for _, svc := range cfg.Services {
			if svc.Proto != "rpc" {
				listening[svc.Port] = true
			}
		}
		if cfg.HTTPAddr != "" {
			if host, _, _ := net.SplitHostPort(cfg.HTTPAddr); host != "127.0.0.1" && host != "localhost" {
				httpPorts[name] = port(t, cfg.HTTPAddr)
				listening[httpPorts[name]] = true
			}
		}
		for _, p := range s.Ports {
			parts := strings.Split(p, ":")
			container, err := strconv.Atoi(strings.TrimSuffix(parts[len(parts)-1], "/tcp"))
			if err != nil {
				t.Fatalf("service %s: port %q: %v", name, p, err)
			}
			if !listening[container] {
				t.Errorf("service %s publishes port %d, where amber %s does not listen (SERVICES %v, HTTP_ADDR %q)", name, container, cmd, cfg.Services, cfg.HTTPAddr)
			}
		}
	}
	if count[config.Build] != 1 || count[config.Serve] != 2 {
		t.Errorf("want one builder and two servers, got %v", count)
	}

	// Prometheus scrapes each amber node on its HTTP port.
	pb, err := os.ReadFile(filepath.Join("prometheus", "prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var prom struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal(pb, &prom); err != nil {
		t.Fatalf("prometheus.yml: %v", err)
	}
	scraped := map[string]bool{}
	for _, sc := range prom.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			for _, target := range st.Targets {
				host, _, _ := net.SplitHostPort(target)
				if p, ok := httpPorts[host]; !ok || p != port(t, target) {
					t.Errorf("prometheus scrapes %s, which is no amber service's HTTP_ADDR", target)
				}
				scraped[host] = true
			}
		}
	}
	for name := range httpPorts {
		if !scraped[name] {
			t.Errorf("prometheus does not scrape %s", name)
		}
	}
	mounted := strings.Join(cf.Services["prometheus"].Volumes, "\n")
	for _, rf := range prom.RuleFiles {
		if !strings.Contains(mounted, "./prometheus/"+filepath.Base(rf)+":"+rf) {
			t.Errorf("prometheus reads %s, which compose does not mount from infra/prometheus", rf)
		}
		if _, err := os.Stat(filepath.Join("prometheus", filepath.Base(rf))); err != nil {
			t.Errorf("rule file: %v", err)
		}
	}

	// Grafana loads the dashboard directory compose mounts, which holds
	// the Amber dashboard.
	gb, err := os.ReadFile(filepath.Join("grafana", "provisioning", "dashboards", "amber.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var prov struct {
		Providers []struct {
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	if err := yaml.Unmarshal(gb, &prov); err != nil || len(prov.Providers) != 1 {
		t.Fatalf("grafana dashboard provisioning: %v %+v", err, prov)
	}
	gv := strings.Join(cf.Services["grafana"].Volumes, "\n")
	if !strings.Contains(gv, "./grafana/dashboards:"+prov.Providers[0].Options.Path) || !strings.Contains(gv, "./grafana/provisioning:/etc/grafana/provisioning") {
		t.Errorf("grafana's volumes %q do not mount the provisioning and the dashboards at %s", gv, prov.Providers[0].Options.Path)
	}
	if _, err := os.Stat(filepath.Join("grafana", "dashboards", "amber.json")); err != nil {
		t.Errorf("dashboard: %v", err)
	}
}

// readEnvFile reads KEY=value lines, skipping comments and blanks.
func readEnvFile(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: %q is not KEY=value", path, line)
		}
		env[k] = v
	}
	return env
}

// unitExec returns the amber arguments of a unit's ExecStart and the
// Environment= settings it adds.
func unitExec(t *testing.T, path string) ([]string, map[string]string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var args []string
	env := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "ExecStart="); ok {
			f := strings.Fields(v)
			if len(f) == 0 || filepath.Base(f[0]) != "amber" {
				t.Fatalf("%s: ExecStart runs %q, not amber", path, v)
			}
			args = f[1:]
		}
		if v, ok := strings.CutPrefix(line, "Environment="); ok {
			k, val, _ := strings.Cut(v, "=")
			env[k] = val
		}
	}
	return args, env
}

// The systemd units run commands amber accepts with the example env files.
func TestUnitsAndEnvFiles(t *testing.T) {
	for _, role := range []string{"serve", "build"} {
		env := readEnvFile(t, filepath.Join("env", role+".env.example"))
		args, unitEnv := unitExec(t, filepath.Join("systemd", "amber-"+role+".service"))
		for k, v := range unitEnv {
			env[k] = v
		}
		if args[0] != role {
			t.Errorf("amber-%s.service runs amber %s", role, args[0])
		}
		checkInvocation(t, "amber-"+role+".service with env/"+role+".env.example", args, env)
	}
}

var (
	binDir    string
	buildOnce sync.Once
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// buildAmber builds amber the way the other packages' tests do, once.
func buildAmber(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		if binDir, buildErr = os.MkdirTemp("", "amber-infra-"); buildErr != nil {
			return
		}
		out, err := exec.Command("go", "build", "-o", filepath.Join(binDir, "amber"), "amber/cmd/amber").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, "amber")
}

func TestSystemdUnitsVerify(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Fatal("systemd-analyze is not installed; `make test` installs it (apt-get install systemd)")
	}
	dir := t.TempDir()
	bin := buildAmber(t)
	units, _ := filepath.Glob(filepath.Join("systemd", "*"))
	if len(units) < 3 {
		t.Fatalf("want the serve and build services and the build timer, found %v", units)
	}
	var paths []string
	for _, u := range units {
		b, err := os.ReadFile(u)
		if err != nil {
			t.Fatal(err)
		}
		// verify checks that ExecStart's binary exists: point it at ours.
		b = bytes.ReplaceAll(b, []byte("/usr/local/bin/amber"), []byte(bin))
		p := filepath.Join(dir, filepath.Base(u))
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	verify := func(paths ...string) string {
		out, err := exec.Command(sa, append([]string{"verify"}, paths...)...).CombinedOutput()
		if err != nil {
			return string(out) + err.Error()
		}
		return string(out)
	}
	if out := verify(paths...); strings.TrimSpace(out) != "" {
		t.Errorf("systemd-analyze verify:\n%s", out)
	}
	// systemd-analyze reports a unit mistake only as a warning: make sure
	// this test sees one.
	bad := filepath.Join(dir, "amber-bad.service")
	if err := os.WriteFile(bad, []byte("[Service]\nExecStart="+bin+" serve\nRestart=sometimes\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := verify(bad); !strings.Contains(out, "sometimes") {
		t.Errorf("systemd-analyze verify did not report a bad Restart= value: %q", out)
	}
}

// dockerfileBuild returns the Dockerfile's `go build` RUN command.
func dockerfileBuild(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	lines := strings.Split(string(b), "\n")
	for i := 0; i < len(lines); i++ {
		cmd, ok := strings.CutPrefix(lines[i], "RUN ")
		if !ok {
			continue
		}
		for strings.HasSuffix(cmd, "\\") && i+1 < len(lines) {
			i++
			cmd = strings.TrimSuffix(cmd, "\\") + " " + strings.TrimSpace(lines[i])
		}
		if strings.Contains(cmd, "go build") {
			found = append(found, cmd)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want one RUN ... go build in the Dockerfile, found %q", found)
	}
	return found[0]
}

func TestDockerfileBuildsTheSameBinary(t *testing.T) {
	cmd := dockerfileBuild(t)
	m := regexp.MustCompile(`-o (\S+)`).FindStringSubmatch(cmd)
	if m == nil {
		t.Fatalf("the build command names no -o output: %s", cmd)
	}
	dir := t.TempDir()
	imageBin := filepath.Join(dir, "image-amber")
	sh := exec.Command("sh", "-c", strings.Replace(cmd, m[0], "-o "+imageBin, 1))
	sh.Dir = ".." // the Dockerfile builds from the repository root
	if out, err := sh.CombinedOutput(); err != nil {
		t.Fatalf("the Dockerfile's build command failed: %v\n%s", err, out)
	}

	f, err := elf.Open(imageBin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the image's binary needs a dynamic loader; distroless/static has none")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("the image's binary links %v", libs)
	}

	testBin := buildAmber(t)
	for _, args := range [][]string{{"version"}, {"--help"}} {
		want, err := exec.Command(testBin, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("amber %v: %v\n%s", args, err, want)
		}
		got, err := exec.Command(imageBin, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("image amber %v: %v\n%s", args, err, got)
		}
		if args[0] == "version" {
			// The image's build context has no .git, so it never stamps a
			// commit; the tests' binary may, depending on GOFLAGS.
			want = regexp.MustCompile(`(?m)^commit \S+\n`).ReplaceAll(want, nil)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("amber %v differs between the image and the tests:\nimage: %s\ntests: %s", args, got, want)
		}
	}

	// The image's entrypoint, health check and ports agree with the build.
	b, _ := os.ReadFile("Dockerfile")
	df := string(b)
	dst := regexp.MustCompile(`COPY --from=build /out/amber (\S+)`).FindStringSubmatch(df)
	if dst == nil || !strings.Contains(df, `ENTRYPOINT ["`+dst[1]+`"]`) {
		t.Errorf("the entrypoint is not the binary the build stage made")
	}
	httpAddr := regexp.MustCompile(`HTTP_ADDR=(\S+)`).FindStringSubmatch(df)
	if httpAddr == nil {
		t.Fatal("the image sets no HTTP_ADDR")
	}
	hp := strconv.Itoa(port(t, httpAddr[1]))
	if !strings.Contains(df, "http://127.0.0.1:"+hp+"/readyz") {
		t.Errorf("the health check does not ask /readyz on HTTP_ADDR's port %s", hp)
	}
	if !regexp.MustCompile(`(?m)^EXPOSE .*\b` + hp + `\b`).MatchString(df) {
		t.Errorf("port %s is not exposed", hp)
	}
	if u := regexp.MustCompile(`(?m)^USER (\S+)`).FindStringSubmatch(df); u == nil || strings.HasPrefix(u[1], "0") || strings.HasPrefix(u[1], "root") {
		t.Errorf("the image must run as a non-root user, got %v", u)
	}
}

// The Terraform modules hand amber settings by name; a renamed option must
// fail here, not in a deployed task.
func TestTerraformSettingsAreAmberOptions(t *testing.T) {
	for _, c := range []struct {
		module string
		cmd    config.Command
	}{{"server_group", config.Serve}, {"builder", config.Build}} {
		b, err := os.ReadFile(filepath.Join("..", "terraform", "modules", c.module, "main.tf"))
		if err != nil {
			t.Fatal(err)
		}
		src := string(b)
		start := strings.Index(src, "environment = merge({")
		if start < 0 {
			t.Fatalf("%s: no environment = merge({ ... }) block", c.module)
		}
		end := strings.Index(src[start:], "\n  }") // the map's closing brace
		names := regexp.MustCompile(`(?m)^\s+([A-Z][A-Z0-9_]*)\s+=`).FindAllStringSubmatch(src[start:start+end], -1)
		names = append(names, regexp.MustCompile(`\b([A-Z][A-Z0-9_]+) = local\.key_file`).FindAllStringSubmatch(src, -1)...)
		// Secrets of the amber container (not of helper containers).
		loc := regexp.MustCompile(`name\s+=\s+"amber"`).FindStringIndex(src)
		if loc == nil {
			t.Fatalf("%s: no amber container", c.module)
		}
		container := src[loc[0]:]
		container = container[:strings.Index(container, "logConfiguration")]
		secrets := regexp.MustCompile(`name = "([A-Z][A-Z0-9_]*)", valueFrom`).FindAllStringSubmatch(container, -1)
		if len(secrets) == 0 {
			t.Errorf("%s: the amber container gets no secrets (DAEMON_URL)", c.module)
		}
		names = append(names, secrets...)
		if len(names) < 5 {
			t.Fatalf("%s: found only %d settings", c.module, len(names))
		}
		allowed := optionNames(t, c.cmd)
		for _, m := range names {
			if !allowed[m[1]] {
				t.Errorf("terraform/modules/%s sets %s, which amber %s does not read", c.module, m[1], c.cmd)
			}
		}
	}
}
