#!/usr/bin/env python3
"""Calls arflow the way a partner engineer with a stock client would: no generated code,
only gRPC server reflection. Needs `pip install grpcio grpcio-reflection protobuf`.

    ARFLOW_API_KEY=afk_... python3 scripts/reflection_client.py [127.0.0.1:50051]
"""
import json
import os
import sys

import grpc
from google.protobuf import descriptor_pool, json_format, message_factory
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

addr = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:50051"
key = os.environ.get("ARFLOW_API_KEY", "")
channel = grpc.insecure_channel(addr)
db = ProtoReflectionDescriptorDatabase(channel)
print("services:", ", ".join(db.get_services()))

pool = descriptor_pool.DescriptorPool(db)
method = pool.FindMethodByName("arflow.claims.v1.ClaimsService.ListClaims")
Request = message_factory.GetMessageClass(method.input_type)
Response = message_factory.GetMessageClass(method.output_type)
call = channel.unary_unary(
    "/arflow.claims.v1.ClaimsService/ListClaims",
    request_serializer=Request.SerializeToString,
    response_deserializer=Response.FromString,
)
reply = call(Request(page_size=5), metadata=[("authorization", f"Bearer {key}")])
print(json.dumps(json_format.MessageToDict(reply), indent=2))
