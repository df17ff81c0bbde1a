from services.metrics.config import MetricsSettings
from services.metrics.main import create_app
from shared.serve import serve

if __name__ == "__main__":
    settings = MetricsSettings()
    serve(lambda: create_app(settings), settings)
