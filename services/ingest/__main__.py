from services.ingest.config import IngestSettings
from services.ingest.main import create_app
from shared.serve import serve

if __name__ == "__main__":
    settings = IngestSettings()
    serve(lambda: create_app(settings), settings)
