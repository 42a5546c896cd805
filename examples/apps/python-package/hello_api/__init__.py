"""hello_api: a small API packaged the way larger Python services are."""
