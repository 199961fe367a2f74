package deploy

// NetworkPolicy semantics the API server does not check (it validates the
// shape, not whom a policy lets through). The evaluator below follows the
// NetworkPolicy documentation (kubernetes.io/docs/concepts/services-networking/network-policies):
// a pod selected by a policy of a type accepts only what some rule allows;
// a rule matches when one of its peers and one of its ports match (an
// empty list matches everything); a peer with both namespaceSelector and
// podSelector needs both; a podSelector alone means the policy's namespace;
// ipBlock peers match addresses, not pods (the pod network is private and
// the production policy excludes private ranges).

import (
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// endpoint is a pod (namespace name and labels, pod labels, its named
// ports) or an address outside the cluster.
type endpoint struct {
	namespace string
	nsLabels  map[string]string
	labels    map[string]string
	ports     map[string]int32
	ip        string
}

func pod(ns string, l map[string]string) endpoint {
	return endpoint{namespace: ns, nsLabels: map[string]string{"kubernetes.io/metadata.name": ns}, labels: l}
}

func selects(sel *metav1.LabelSelector, l map[string]string) bool {
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		panic(err)
	}
	return s.Matches(labels.Set(l))
}

func peerMatches(np *networkingv1.NetworkPolicy, p networkingv1.NetworkPolicyPeer, e endpoint) bool {
	if p.IPBlock != nil {
		if e.ip == "" {
			return false
		}
		ip := net.ParseIP(e.ip)
		_, cidr, err := net.ParseCIDR(p.IPBlock.CIDR)
		if err != nil || !cidr.Contains(ip) {
			return false
		}
		for _, ex := range p.IPBlock.Except {
			if _, c, err := net.ParseCIDR(ex); err == nil && c.Contains(ip) {
				return false
			}
		}
		return true
	}
	if e.ip != "" {
		return false
	}
	if p.NamespaceSelector != nil {
		if !selects(p.NamespaceSelector, e.nsLabels) {
			return false
		}
	} else if e.namespace != np.Namespace {
		return false
	}
	return p.PodSelector == nil || selects(p.PodSelector, e.labels)
}

func portMatches(ports []networkingv1.NetworkPolicyPort, target endpoint, port int32, proto corev1.Protocol) bool {
	if len(ports) == 0 {
		return true
	}
	for _, p := range ports {
		pr := corev1.ProtocolTCP
		if p.Protocol != nil {
			pr = *p.Protocol
		}
		if pr != proto {
			continue
		}
		if p.Port == nil {
			return true
		}
		want := p.Port.IntVal
		if p.Port.StrVal != "" {
			want = target.ports[p.Port.StrVal]
		}
		if want == port {
			return true
		}
	}
	return false
}

// allowed reports whether traffic from src to dst on port/proto passes the
// policies of dst's namespace (ingress) and of src's namespace (egress).
func allowed(policies []*networkingv1.NetworkPolicy, src, dst endpoint, port int32, proto corev1.Protocol) bool {
	egressOK, ingressOK := true, true
	for _, np := range policies {
		if src.ip == "" && np.Namespace == src.namespace && selects(&np.Spec.PodSelector, src.labels) && hasType(np, networkingv1.PolicyTypeEgress) {
			if egressOK = false; anyRule(np.Spec.Egress, func(r networkingv1.NetworkPolicyEgressRule) bool {
				return anyPeer(np, r.To, dst) && portMatches(r.Ports, dst, port, proto)
			}) {
				egressOK = true
			}
		}
	}
	for _, np := range policies {
		if dst.ip == "" && np.Namespace == dst.namespace && selects(&np.Spec.PodSelector, dst.labels) && hasType(np, networkingv1.PolicyTypeIngress) {
			if ingressOK = false; anyRule(np.Spec.Ingress, func(r networkingv1.NetworkPolicyIngressRule) bool {
				return anyPeer(np, r.From, src) && portMatches(r.Ports, dst, port, proto)
			}) {
				ingressOK = true
			}
		}
	}
	return egressOK && ingressOK
}

func hasType(np *networkingv1.NetworkPolicy, t networkingv1.PolicyType) bool {
	for _, x := range np.Spec.PolicyTypes {
		if x == t {
			return true
		}
	}
	return false
}

func anyRule[R any](rules []R, f func(R) bool) bool {
	for _, r := range rules {
		if f(r) {
			return true
		}
	}
	return false
}

func anyPeer(np *networkingv1.NetworkPolicy, peers []networkingv1.NetworkPolicyPeer, e endpoint) bool {
	if len(peers) == 0 {
		return true
	}
	for _, p := range peers {
		if peerMatches(np, p, e) {
			return true
		}
	}
	return false
}

// agentOf returns the agent pod of a built app: its namespace, template
// labels and named ports.
func agentOf(t *testing.T, objs []any) (endpoint, []*networkingv1.NetworkPolicy) {
	t.Helper()
	sts := findObject[*appsv1.StatefulSet](t, objs)
	e := pod(sts.Namespace, sts.Spec.Template.Labels)
	e.ports = map[string]int32{}
	for _, c := range sts.Spec.Template.Spec.Containers {
		for _, p := range c.Ports {
			e.ports[p.Name] = p.ContainerPort
		}
	}
	var nps []*networkingv1.NetworkPolicy
	for _, o := range objs {
		if np, ok := o.(*networkingv1.NetworkPolicy); ok {
			nps = append(nps, np)
		}
	}
	require.NotEmpty(t, nps)
	return e, nps
}

var (
	kubeDNS          = pod("kube-system", map[string]string{"k8s-app": "kube-dns"})
	ingressNginx     = pod("ingress-nginx", map[string]string{"app.kubernetes.io/name": "ingress-nginx", "app.kubernetes.io/component": "controller"})
	nginxAdmission   = pod("ingress-nginx", map[string]string{"app.kubernetes.io/name": "ingress-nginx", "app.kubernetes.io/component": "admission-webhook"})
	prometheus       = pod("monitoring", map[string]string{"app.kubernetes.io/name": "prometheus"})
	otherMonitoring  = pod("monitoring", map[string]string{"app.kubernetes.io/name": "grafana"})
	defaultNamespace = pod("default", map[string]string{"app": "anything"})
	openAI           = endpoint{ip: "162.159.140.245"}
	cloudMetadata    = endpoint{ip: "169.254.169.254"}
	podNetwork       = endpoint{ip: "10.42.0.17"}
)

// Breakage 2: DNS must be reachable (the instance label was added to the
// DNS peer's podSelector), and only the ingress controller (and Prometheus)
// may reach the agent.
func TestNetworkPolicySemantics(t *testing.T) {
	builds := map[string][]any{
		"production (Flux build of ./voice)": decodeAll(t, buildFlux(t, "./voice", map[string]any{"path": "./voice", "prune": true})),
		"review app, pull path (./review/app)": decodeAll(t, buildFlux(t, "./review/app", map[string]any{
			"path": "./review/app", "prune": true, "targetNamespace": "voice-mr-7",
		})),
	}
	for name, objs := range builds {
		t.Run(name, func(t *testing.T) {
			agent, nps := agentOf(t, objs)
			require.Equal(t, int32(8080), agent.ports["http"])
			for _, proto := range []corev1.Protocol{corev1.ProtocolUDP, corev1.ProtocolTCP} {
				assert.True(t, allowed(nps, agent, kubeDNS, 53, proto), "DNS over %s to kube-dns", proto)
			}
			assert.True(t, allowed(nps, agent, openAI, 443, corev1.ProtocolTCP), "HTTPS to the OpenAI API")
			assert.False(t, allowed(nps, agent, openAI, 80, corev1.ProtocolTCP), "plain HTTP out")
			assert.False(t, allowed(nps, agent, cloudMetadata, 443, corev1.ProtocolTCP), "cloud metadata")
			assert.False(t, allowed(nps, agent, podNetwork, 443, corev1.ProtocolTCP), "other pods by address")
			assert.False(t, allowed(nps, agent, defaultNamespace, 443, corev1.ProtocolTCP), "other pods")

			assert.True(t, allowed(nps, ingressNginx, agent, 8080, corev1.ProtocolTCP), "from the ingress controller")
			assert.True(t, allowed(nps, prometheus, agent, 8080, corev1.ProtocolTCP), "metrics scrapes from Prometheus")
			assert.False(t, allowed(nps, ingressNginx, agent, 9090, corev1.ProtocolTCP), "other ports")
			for _, from := range []endpoint{nginxAdmission, otherMonitoring, defaultNamespace, pod(agent.namespace, map[string]string{"app": "other"})} {
				assert.False(t, allowed(nps, from, agent, 8080, corev1.ProtocolTCP), "from %s %v", from.namespace, from.labels)
			}
		})
	}
	// Apps of different namespaces never reach each other.
	prod, prodNP := agentOf(t, builds["production (Flux build of ./voice)"])
	review, reviewNP := agentOf(t, builds["review app, pull path (./review/app)"])
	all := append(prodNP, reviewNP...)
	assert.False(t, allowed(all, review, prod, 8080, corev1.ProtocolTCP), "review app to production")
	assert.False(t, allowed(all, prod, review, 8080, corev1.ProtocolTCP), "production to review app")
}

// TestNetworkPolicyEvaluatorCanFail: the evaluator says no when a policy
// says no (a DNS peer with a label kube-dns lacks; peers ORed instead of
// ANDed).
func TestNetworkPolicyEvaluatorCanFail(t *testing.T) {
	udp := corev1.ProtocolUDP
	np := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "voice"}, Spec: networkingv1.NetworkPolicySpec{
		PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "a"}},
		PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress},
		Egress: []networkingv1.NetworkPolicyEgressRule{{
			To: []networkingv1.NetworkPolicyPeer{{
				NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": "kube-system"}},
				PodSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"k8s-app": "kube-dns", "app.kubernetes.io/instance": "voice"}},
			}},
			Ports: []networkingv1.NetworkPolicyPort{{Protocol: &udp}},
		}},
	}}
	a := pod("voice", map[string]string{"app": "a"})
	assert.False(t, allowed([]*networkingv1.NetworkPolicy{np}, a, kubeDNS, 53, udp))
	np.Spec.Egress[0].To[0].PodSelector.MatchLabels = map[string]string{"k8s-app": "kube-dns"}
	assert.True(t, allowed([]*networkingv1.NetworkPolicy{np}, a, kubeDNS, 53, udp))
	assert.False(t, allowed([]*networkingv1.NetworkPolicy{np}, a, pod("default", map[string]string{"k8s-app": "kube-dns"}), 53, udp),
		"namespaceSelector and podSelector in one peer are ANDed")
}
