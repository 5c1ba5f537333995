# The compose application's life through docker-py (Debian's python3-docker),
# against the socket in DOCKER_HOST: build, a user network, a named volume, a
# published port, exec, logs, commit, and the clean-up. It prints what it saw,
# one fact per line, for integration/api_compose_test.go to compare.
import os
import sys
import time
import urllib.request

import docker

port = int(os.environ["WEB_PORT"])
context = sys.argv[1]
c = docker.DockerClient(base_url=os.environ["DOCKER_HOST"], timeout=120)
print("ping", c.ping())
img, logs = c.images.build(path=context, tag="sdk-web:1", rm=True)
print("built", "sdk-web:1" in img.tags, any("Successfully built" in l.get("stream", "") for l in logs))
net = c.networks.create("sdk-back", driver="bridge")
vol = c.volumes.create("sdk-data")
web = c.containers.run("sdk-web:1", detach=True, name="sdk-web", ports={"80/tcp": ("127.0.0.1", port)},
                       network="sdk-back", volumes={"sdk-data": {"bind": "/data", "mode": "rw"}})
body = ""
deadline = time.time() + 30
while time.time() < deadline:
    try:
        body = urllib.request.urlopen("http://127.0.0.1:%d/index.html" % port, timeout=1).read().decode()
        break
    except OSError:
        time.sleep(0.2)
print("served", body.strip())
worker = c.containers.run("busybox", ["sh", "-c", "wget -q -O - http://sdk-web/motd | tee /data/got"], name="sdk-worker",
                          network="sdk-back", volumes={"sdk-data": {"bind": "/data", "mode": "rw"}}, detach=True)
print("worker exit", worker.wait(timeout=60)["StatusCode"])
print("worker logs", worker.logs().decode().strip())
code, out = web.exec_run(["cat", "/data/got"])
print("exec", code, out.decode().strip())
code, out = web.exec_run(["sh", "-c", "exit 5"])
print("exec exit", code)
web.reload()
print("status", web.status, web.attrs["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"] == str(port))
snap = web.commit(repository="sdk-web", tag="snap", author="sdk", message="from docker-py", changes=['CMD ["cat", "/data/got"]'])
print("commit", c.images.get("sdk-web:snap").id == snap.id, snap.attrs["Author"], snap.attrs["Config"]["Cmd"])
print("listed", sorted(x.name for x in c.containers.list(all=True)))
for ctr in (web, worker):
    ctr.remove(force=True)
net.remove()
vol.remove()
c.images.remove("sdk-web:snap")
c.images.remove("sdk-web:1")
print("left", [x.name for x in c.containers.list(all=True)], [n.name for n in c.networks.list(names=["sdk-back"])],
      [v.name for v in c.volumes.list() if v.name == "sdk-data"])
