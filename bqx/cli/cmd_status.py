"""placeholder until the engine lands"""
def register(app):
    pass
