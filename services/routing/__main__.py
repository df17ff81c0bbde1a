from services.routing.config import RoutingSettings
from services.routing.main import create_app
from shared.serve import serve

if __name__ == "__main__":
    settings = RoutingSettings()
    serve(lambda: create_app(settings), settings)
