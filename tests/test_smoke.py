def test_health(anon_api):
    r = anon_api.get("/health")
    assert r.status_code == 200, r.text
    assert r.json()["database"] == "ok"
