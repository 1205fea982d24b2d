#!/usr/bin/python3
"""A test double of kubectl (not kubectl), for the RKE2 double's API: the node commands roles/rke2 uses.

kubectl --kubeconfig F get nodes -o json
kubectl --kubeconfig F get nodes -o jsonpath='{range .items[*]}{.metadata.name}=<Ready status> {end}'
kubectl --kubeconfig F get node NAME -o jsonpath='<Ready status>'
kubectl --kubeconfig F get nodes -o jsonpath='{range .items[*]}{.metadata.name}={.metadata.labels.KEY} {end}'
kubectl --kubeconfig F cordon|uncordon NAME
kubectl --kubeconfig F label node NAME KEY=VALUE --overwrite
kubectl --kubeconfig F drain NAME [flags]
kubectl --kubeconfig F delete node NAME
kubectl --kubeconfig F delete -f FILE --ignore-not-found    (logged as delete-manifest FILE-NAME)
kubectl --kubeconfig F -n kube-system delete addons.k3s.cattle.io NAME --ignore-not-found
"""

import json
import ssl
import sys
import urllib.error
import urllib.request


def ready(node: dict) -> str:
    return next((c["status"] for c in node["status"]["conditions"] if c["type"] == "Ready"), "Unknown")


def main() -> None:
    arguments = sys.argv[1:]
    kubeconfig = arguments[arguments.index("--kubeconfig") + 1] if "--kubeconfig" in arguments else ""
    valued = ("--kubeconfig", "-n", "--namespace")
    words = [a for i, a in enumerate(arguments) if a not in valued and (i == 0 or arguments[i - 1] not in valued)]
    config = json.loads(open(kubeconfig).read())
    server = config["clusters"][0]["cluster"]["server"]
    token = config["users"][0]["user"]["token"]
    context = ssl._create_unverified_context()

    def call(path: str, body: dict | None = None):
        request = urllib.request.Request(
            server + path,
            json.dumps(body).encode() if body else None,
            headers={"Authorization": f"Bearer {token}"},
            method="POST" if body else "GET",
        )
        try:
            return json.loads(urllib.request.urlopen(request, context=context, timeout=10).read())
        except urllib.error.HTTPError as error:
            sys.exit(f"Error from server ({error.code}): {error.read().decode()}")

    output = next(
        (w.split("=", 1)[1] if "=" in w else words[words.index(w) + 1] for w in words if w.startswith("-o")), ""
    )
    if words[:2] == ["get", "--raw"]:
        request = urllib.request.Request(server + words[2], headers={"Authorization": f"Bearer {token}"})
        print(urllib.request.urlopen(request, context=context, timeout=10).read().decode(), end="")
    elif words[:2] == ["get", "nodes"]:
        items = call("/api/v1/nodes")["items"]
        if output == "json":
            print(json.dumps({"kind": "List", "items": items}))
        elif ".metadata.labels." in output:
            key = output.split(".metadata.labels.", 1)[1].split("}", 1)[0].replace("\\.", ".")
            print("".join(f"{n['metadata']['name']}={n['metadata']['labels'].get(key, '')} " for n in items), end="")
        else:
            print("".join(f"{n['metadata']['name']}={ready(n)} " for n in items), end="")
    elif words[:2] == ["get", "node"]:
        node = call(f"/api/v1/nodes/{words[2]}")
        if output == "json":
            print(json.dumps(node))
        else:
            print(node["status"]["nodeInfo"]["kubeletVersion"] if "kubeletVersion" in output else ready(node), end="")
    elif words[0] in ("cordon", "uncordon", "drain"):
        call("/double/nodes", {"action": words[0], "node": words[1]})
        print(f"node/{words[1]} {words[0]}ed")
    elif words[:2] == ["label", "node"]:
        for label in words[3:]:
            if "=" in label:
                call("/double/nodes", {"action": "label", "node": words[2], "label": label})
        print(f"node/{words[2]} labeled")
    elif words[:2] == ["delete", "secret"]:
        call("/double/nodes", {"action": "delete-secret", "node": words[2]})
        print(f'secret "{words[2]}" deleted')
    elif words[:2] == ["delete", "-f"]:
        manifest = words[2]
        open(manifest).close()  # kubectl reads the file: a missing one is an error
        call("/double/nodes", {"action": "delete-manifest", "node": manifest.rsplit("/", 1)[-1]})
        print(f"resources of {manifest} deleted")
    elif words[:2] == ["delete", "addons.k3s.cattle.io"]:
        call("/double/nodes", {"action": "delete-addon", "node": words[2]})
        print(f'addon.k3s.cattle.io "{words[2]}" deleted')
    elif words[:2] == ["delete", "node"]:
        call("/double/nodes", {"action": "delete", "node": words[2]})
        print(f'node "{words[2]}" deleted')
    else:
        sys.exit(f"kubectl double: unsupported command {' '.join(words)}")


if __name__ == "__main__":
    main()
