package main

// exechosts.go is the network of exec pods: each running pod gets its own
// loopback address, published as its pod IP, and an /etc/hosts (bound in its
// mount namespace) that resolves its own name, `<hostname>.<subdomain>` of
// every running exec pod and the names of Services whose selector matches
// running exec pods. Hosts files are rewritten in place whenever a pod starts
// or stops or a Service changes, so peers that start later become resolvable.

import (
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// ipPool hands out 127.B.x.y addresses. B is one block per harness (random
// unless --exec-ip-block is given), so two harnesses on one machine rarely
// share addresses.
type ipPool struct {
	mu    sync.Mutex
	block int
	used  map[string]bool
	next  int
}

func newIPPool(block int) *ipPool {
	if block <= 0 || block > 254 {
		block = 1 + rand.IntN(254)
	}
	return &ipPool{block: block, used: map[string]bool{}, next: 2}
}

func (p *ipPool) get() (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for tries := 0; tries < 65536; tries++ {
		n := p.next
		p.next++
		if p.next > 65534 {
			p.next = 2
		}
		if n%256 == 0 || n%256 == 255 {
			continue
		}
		ip := fmt.Sprintf("127.%d.%d.%d", p.block, n/256, n%256)
		if !p.used[ip] {
			p.used[ip] = true
			return ip, nil
		}
	}
	return "", fmt.Errorf("no free loopback address in 127.%d.0.0/16", p.block)
}

func (p *ipPool) put(ip string) {
	p.mu.Lock()
	delete(p.used, ip)
	p.mu.Unlock()
}

// peer is what the hosts files need to know of one running exec pod.
type peer struct {
	namespace, hostname, subdomain, ip string
	labels                             map[string]string
}

const hostsHeader = `# Kubernetes-managed hosts file (testcluster exec pod).
127.0.0.1	localhost
::1	localhost ip6-localhost ip6-loopback
fe00::0	ip6-localnet
fe00::0	ip6-mcastprefix
fe00::1	ip6-allnodes
fe00::2	ip6-allrouters
`

// qualified returns the names of name.namespace under the cluster domain;
// the short name only for the viewer's own namespace (its search path).
func qualified(name, namespace, viewerNS string) []string {
	full := []string{name + "." + namespace + ".svc.cluster.local", name + "." + namespace + ".svc", name + "." + namespace}
	if namespace == viewerNS {
		full = append(full, name)
	}
	return full
}

// hostsFile is pure: the hosts file of self, given every running exec pod
// and every Service.
func hostsFile(self peer, peers []peer, services []*corev1.Service) string {
	var b strings.Builder
	b.WriteString(hostsHeader)
	own := []string{}
	if self.subdomain != "" {
		own = append(own, self.hostname+"."+self.subdomain+"."+self.namespace+".svc.cluster.local")
	}
	own = append(own, self.hostname)
	fmt.Fprintf(&b, "%s\t%s\n", self.ip, strings.Join(own, "\t"))
	b.WriteString("# testcluster: running exec pods and Services\n")
	sorted := append([]peer(nil), peers...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].ip < sorted[j].ip })
	for _, p := range sorted {
		if p.subdomain == "" || p.ip == self.ip {
			continue
		}
		fmt.Fprintf(&b, "%s\t%s\n", p.ip, strings.Join(qualified(p.hostname+"."+p.subdomain, p.namespace, self.namespace), "\t"))
	}
	svcs := append([]*corev1.Service(nil), services...)
	sort.Slice(svcs, func(i, j int) bool {
		return svcs[i].Namespace+"/"+svcs[i].Name < svcs[j].Namespace+"/"+svcs[j].Name
	})
	for _, s := range svcs {
		if len(s.Spec.Selector) == 0 {
			continue
		}
		sel := labels.SelectorFromSet(s.Spec.Selector)
		names := strings.Join(qualified(s.Name, s.Namespace, self.namespace), "\t")
		for _, p := range sorted {
			if p.namespace == s.Namespace && sel.Matches(labels.Set(p.labels)) {
				fmt.Fprintf(&b, "%s\t%s\n", p.ip, names)
			}
		}
	}
	return b.String()
}

// writeInPlace rewrites a file that is bind-mounted elsewhere: the inode must
// stay the same, so write over it, then cut it to length (a reader never sees
// an empty file).
func writeInPlace(path, content string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte(content), 0); err != nil {
		return err
	}
	return f.Truncate(int64(len(content)))
}
