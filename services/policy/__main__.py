from services.policy.config import PolicySettings
from services.policy.main import create_app
from shared.serve import serve

if __name__ == "__main__":
    settings = PolicySettings()
    serve(lambda: create_app(settings), settings)
