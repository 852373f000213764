from ..helpers import query_of


def test_happy_code_flow(flow):
    tokens = flow.tokens()
    assert tokens["token_type"] == "Bearer"
    assert "id_token" in tokens


def test_discovery(http):
    doc = http.get("/.well-known/openid-configuration").get_json()
    assert doc["issuer"] == "http://127.0.0.1:5000"
