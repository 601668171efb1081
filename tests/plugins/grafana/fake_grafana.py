#!/usr/bin/env python3
"""A stand-in for Grafana's HTTP API (no Grafana server can run on this
machine), for the grafana output plugin's tests.

It serves the calls the plugin makes, as Grafana documents them (HTTP API
reference: Data source API, Folder API, Dashboard API), keeps their state in
memory, and records every request and every deviation from the documented
API (wrong method or path, missing Bearer token, missing JSON content type,
missing or mistyped body fields) as a "violation". The test reads both
through GET /_state (outside /api, not part of Grafana).

    fake_grafana.py PORT TOKEN
"""
import json
import re
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

PORT, TOKEN = int(sys.argv[1]), sys.argv[2]
lock = threading.Lock()
state = {"datasources": [], "folders": [], "dashboards": {}, "requests": [], "violations": []}
next_id = {"ds": 1, "folder": 1, "dash": 1}


def violation(msg):
    state["violations"].append(msg)


def need(body, field, typ, where):
    if not isinstance(body, dict) or field not in body:
        violation("%s: body lacks '%s'" % (where, field))
        return False
    if not isinstance(body[field], typ):
        violation("%s: '%s' has the wrong type (%r)" % (where, field, body[field]))
        return False
    return True


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, obj):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self.handle_any("GET")

    def do_POST(self):
        self.handle_any("POST")

    def do_PUT(self):
        self.handle_any("PUT")

    def do_DELETE(self):
        self.handle_any("DELETE")

    def handle_any(self, method):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        url = urlsplit(self.path)
        path = url.path
        with lock:
            if path == "/_state" and method == "GET":
                return self.reply(200, state)
            if path == "/_datasource" and method == "POST":   # test setup: a pre-existing one
                ds = json.loads(raw)
                ds["id"] = next_id["ds"]
                next_id["ds"] += 1
                state["datasources"].append(ds)
                return self.reply(200, ds)
            where = "%s %s" % (method, path)
            auth = self.headers.get("Authorization")
            state["requests"].append({"method": method, "path": path, "auth": auth})
            if auth != "Bearer " + TOKEN:
                if auth is None or not auth.startswith("Bearer "):
                    violation(where + ": no 'Authorization: Bearer' header (%r)" % auth)
                return self.reply(401, {"message": "Unauthorized"})
            body = None
            if method in ("POST", "PUT"):
                if not (self.headers.get("Content-Type") or "").startswith("application/json"):
                    violation(where + ": Content-Type is not application/json")
                try:
                    body = json.loads(raw)
                except ValueError:
                    violation(where + ": body is not JSON")
                    return self.reply(400, {"message": "bad request data"})
            return self.route(method, path, body, where)

    def route(self, method, path, body, where):
        m = re.fullmatch(r"/api/datasources/name/([^/]+)", path)
        if m and method == "GET":
            name = unquote(m.group(1))
            for ds in state["datasources"]:
                if ds["name"] == name:
                    return self.reply(200, ds)
            return self.reply(404, {"message": "Data source not found"})
        if path == "/api/datasources" and method == "POST":
            ok = all([need(body, "name", str, where), need(body, "type", str, where),
                      need(body, "access", str, where), need(body, "url", str, where)])
            if not ok:
                return self.reply(400, {"message": "bad request data"})
            if any(d["name"] == body["name"] for d in state["datasources"]):
                return self.reply(409, {"message": "data source with the same name already exists"})
            uid = body.get("uid") or "generated%d" % next_id["ds"]
            if any(d.get("uid") == uid for d in state["datasources"]):
                return self.reply(409, {"message": "data source with the same uid already exists"})
            ds = dict(body, id=next_id["ds"], uid=uid, orgId=1, version=1)
            ds.setdefault("isDefault", False)
            ds.setdefault("jsonData", {})
            next_id["ds"] += 1
            state["datasources"].append(ds)
            return self.reply(200, {"datasource": ds, "id": ds["id"], "message": "Datasource added",
                                    "name": ds["name"]})
        m = re.fullmatch(r"/api/datasources/(\d+)", path)
        if m and method == "PUT":
            ok = all([need(body, "name", str, where), need(body, "type", str, where),
                      need(body, "access", str, where), need(body, "url", str, where)])
            if not ok:
                return self.reply(400, {"message": "bad request data"})
            for i, ds in enumerate(state["datasources"]):
                if ds["id"] == int(m.group(1)):
                    new = dict(body, id=ds["id"], uid=body.get("uid") or ds["uid"], orgId=1,
                               version=ds.get("version", 1) + 1)
                    if new["uid"] != ds["uid"]:
                        violation(where + ": changes the uid of the data source")
                    state["datasources"][i] = new
                    return self.reply(200, {"datasource": new, "id": new["id"],
                                            "message": "Datasource updated", "name": new["name"]})
            return self.reply(404, {"message": "Data source not found"})
        if path == "/api/folders" and method == "GET":
            return self.reply(200, [{"id": f["id"], "uid": f["uid"], "title": f["title"]}
                                    for f in state["folders"]])
        if path == "/api/folders" and method == "POST":
            if not need(body, "title", str, where):
                return self.reply(400, {"message": "bad request data"})
            if any(f["title"] == body["title"] for f in state["folders"]):
                return self.reply(409, {"message": "a folder with the same name already exists"})
            f = {"id": next_id["folder"], "uid": body.get("uid") or "f%d" % next_id["folder"],
                 "title": body["title"], "version": 1}
            next_id["folder"] += 1
            state["folders"].append(f)
            return self.reply(200, f)
        m = re.fullmatch(r"/api/dashboards/uid/([^/]+)", path)
        if m and method == "GET":
            d = state["dashboards"].get(unquote(m.group(1)))
            if not d:
                return self.reply(404, {"message": "Dashboard not found"})
            return self.reply(200, {"dashboard": d["dashboard"],
                                    "meta": {"folderId": d["folderId"], "folderUid": d["folderUid"],
                                             "version": d["dashboard"]["version"]}})
        if path == "/api/dashboards/db" and method == "POST":
            if not need(body, "dashboard", dict, where):
                return self.reply(400, {"message": "bad request data"})
            dash = body["dashboard"]
            need(dash, "title", str, where + " dashboard")
            if not need(dash, "uid", str, where + " dashboard"):
                return self.reply(400, {"message": "bad request data"})
            if "overwrite" in body and not isinstance(body["overwrite"], bool):
                violation(where + ": overwrite is not a boolean")
            if "folderId" in body and not isinstance(body["folderId"], int):
                violation(where + ": folderId is not an integer")
            fuid = body.get("folderUid", "")
            if fuid and not any(f["uid"] == fuid for f in state["folders"]):
                return self.reply(400, {"message": "folder not found"})
            old = state["dashboards"].get(dash["uid"])
            if dash.get("id") is not None and (not old or old["dashboard"]["id"] != dash["id"]):
                return self.reply(404, {"message": "Dashboard not found"})
            if old and not body.get("overwrite") and dash.get("version") != old["dashboard"]["version"]:
                return self.reply(412, {"status": "version-mismatch", "message": "version mismatch"})
            did = old["dashboard"]["id"] if old else next_id["dash"]
            if not old:
                next_id["dash"] += 1
            version = old["dashboard"]["version"] + 1 if old else 1
            stored = dict(dash, id=did, version=version)
            folder_id = next((f["id"] for f in state["folders"] if f["uid"] == fuid), 0)
            state["dashboards"][dash["uid"]] = {"dashboard": stored, "folderUid": fuid,
                                                "folderId": folder_id, "message": body.get("message")}
            return self.reply(200, {"id": did, "uid": dash["uid"], "status": "success",
                                    "version": version, "url": "/d/" + dash["uid"], "slug": "x"})
        violation(where + ": not an API call the plugin should make")
        return self.reply(404, {"message": "Not found"})


server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
print("ready", flush=True)
server.serve_forever()
