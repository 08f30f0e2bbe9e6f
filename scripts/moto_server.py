"""moto's server as the tests and the demo run it: `moto_server.py PORT [--exit-with-parent]`.

One fix to moto's SQS (moto 5.2.5, pinned in requirements-dev.txt): a receive picks messages
from the queue without a lock while a delete on another thread removes one, so a message deleted
mid-receive could still be handed out, under a receipt handle that no delete accepts afterwards
(and its FIFO group stayed blocked). SQS never hands out a deleted message of a FIFO queue: here
a message marked deleted before its handles are recorded is dropped from the receive.

`--exit-with-parent`: the server exits when the process that started it does (a test process's
own server).
"""

import os
import sys
import threading
import time

from moto.sqs import models

_delete_message = models.Queue.delete_message
_still_retained = models.SQSBackend.is_message_valid_based_on_retention_period


def delete_message(queue, receipt_handle):
    for message in list(queue._messages):
        if message.had_receipt_handle(receipt_handle):
            message.deleted_meanwhile = True
    _delete_message(queue, receipt_handle)


def is_message_valid_based_on_retention_period(backend, queue_name, message):
    # Asked by a receive right after it marked `message` received: a deleted one is not handed out.
    if getattr(message, "deleted_meanwhile", False):
        backend.get_queue(queue_name).pending_messages.discard(message)
        return False
    return _still_retained(backend, queue_name, message)


models.Queue.delete_message = delete_message
models.SQSBackend.is_message_valid_based_on_retention_period = is_message_valid_based_on_retention_period


def exit_with(parent):
    while os.getppid() == parent:
        time.sleep(0.2)
    os._exit(0)


if __name__ == "__main__":
    if "--exit-with-parent" in sys.argv:
        threading.Thread(target=exit_with, args=(os.getppid(),), daemon=True).start()
    from moto.backends import get_backend

    for service in ("dynamodb", "events", "sqs", "lambda", "secretsmanager", "stepfunctions", "cloudwatch"):
        get_backend(service)
    from moto.server import main

    main(["-H", "127.0.0.1", "-p", sys.argv[1]])
