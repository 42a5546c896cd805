"""The ASGI app: GoldenPath finds `app` here and starts `uvicorn hello_api.main:app`."""
from fastapi import FastAPI

from hello_api.greeting import greeting

app = FastAPI()


@app.get("/")
def index() -> dict[str, str]:
    return {"message": greeting(), "app": "python-package"}
