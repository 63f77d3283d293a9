# twistd -n -y queue_server.tac: the real mailsuite service with the outbound
# queue attached (as service.py will do); the config file comes from the
# environment variable MAILSUITE_TEST_CONFIG.
import os

from twisted.application import service
from twisted.internet import reactor

from mailsuite import config
from mailsuite.delivery.queue import attach
from mailsuite.service import make_service

top = make_service(config.load(os.environ["MAILSUITE_TEST_CONFIG"]), reactor)
try:
    top.getServiceNamed("queue")
except KeyError:
    attach(top.context, top)
application = service.Application("mailsuite")
top.setServiceParent(application)
