//! gRPC front end (`ward.v1.Query`): the same operations as HTTP, JSON documents in string fields.

use std::pin::Pin;
use std::sync::Arc;

use serde_json::Value;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};
use ward_proto::v1::query_server::Query;
use ward_proto::v1::{
    ArchiveResult, Empty, FindingIds, GetFindingRequest, JsonDocument, JsonDocuments,
    ListFindingsRequest, ListFindingsResponse, Name, StreamFindingsRequest,
};

use super::ApiState;
use super::auth::{Role, Verdict};
use super::ops::{self, ApiError};

pub struct QueryService {
    pub state: Arc<ApiState>,
}

fn status(e: ApiError) -> Status {
    match e {
        ApiError::BadRequest(m) => Status::invalid_argument(m),
        ApiError::Unauthenticated => Status::unauthenticated(ApiError::Unauthenticated.message()),
        ApiError::Forbidden => Status::permission_denied(ApiError::Forbidden.message()),
        ApiError::NotFound(m) => Status::not_found(m),
        ApiError::Internal(m) => Status::internal(m),
    }
}

fn json_text<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("API responses serialise")
}

fn parse_json(text: &str, what: &str) -> Result<Value, Status> {
    serde_json::from_str(text).map_err(|e| Status::invalid_argument(format!("{what}: {e}")))
}

impl QueryService {
    fn authorize<T>(&self, request: &Request<T>, needs: Role) -> Result<(), Status> {
        // Set by `super::identify` from the same headers (gRPC metadata) and the connection.
        let caller = request
            .extensions()
            .get::<Verdict>()
            .copied()
            .unwrap_or(Verdict::Unauthenticated);
        let result = match caller {
            Verdict::Unauthenticated => Err(ApiError::Unauthenticated),
            Verdict::Allowed(role) if role >= needs => Ok(()),
            Verdict::Allowed(_) => Err(ApiError::Forbidden),
        };
        result.map_err(status)
    }

    async fn archive(
        &self,
        request: Request<FindingIds>,
        archived: bool,
    ) -> Result<Response<ArchiveResult>, Status> {
        self.authorize(&request, Role::Admin)?;
        let ids = request.into_inner().finding_ids;
        let ids =
            ops::parse_finding_ids(&serde_json::json!({ "findingIds": ids })).map_err(status)?;
        let outcome = ops::archive(&self.state.store, ids, archived)
            .await
            .map_err(status)?;
        Ok(Response::new(ArchiveResult {
            changed: outcome.changed,
            unchanged: outcome.unchanged,
            unknown: outcome.unknown,
        }))
    }
}

type ChangeStream = Pin<Box<dyn Stream<Item = Result<JsonDocument, Status>> + Send>>;

#[tonic::async_trait]
impl Query for QueryService {
    async fn list_findings(
        &self,
        request: Request<ListFindingsRequest>,
    ) -> Result<Response<ListFindingsResponse>, Status> {
        self.authorize(&request, Role::Read)?;
        let r = request.into_inner();
        // Built as the HTTP body so both front ends share one parser.
        let mut body = serde_json::Map::new();
        if !r.finding_criteria_json.trim().is_empty() {
            body.insert(
                "findingCriteria".into(),
                parse_json(&r.finding_criteria_json, "finding_criteria_json")?,
            );
        }
        let mut sort = serde_json::Map::new();
        if !r.sort_attribute.is_empty() {
            sort.insert("attributeName".into(), r.sort_attribute.into());
        }
        if !r.order_by.is_empty() {
            sort.insert("orderBy".into(), r.order_by.into());
        }
        if !sort.is_empty() {
            body.insert("sortCriteria".into(), sort.into());
        }
        if r.max_results != 0 {
            body.insert("maxResults".into(), r.max_results.into());
        }
        if !r.next_token.is_empty() {
            body.insert("nextToken".into(), r.next_token.into());
        }
        let query = ops::parse_list_request(&Value::Object(body)).map_err(status)?;
        let page = ops::list_findings(&self.state.store, query)
            .await
            .map_err(status)?;
        Ok(Response::new(ListFindingsResponse {
            findings_json: page
                .findings
                .into_iter()
                .map(|f| f.get().to_owned())
                .collect(),
            next_token: page.next_token.unwrap_or_default(),
        }))
    }

    async fn get_finding(
        &self,
        request: Request<GetFindingRequest>,
    ) -> Result<Response<JsonDocument>, Status> {
        self.authorize(&request, Role::Read)?;
        let detail = ops::get_finding(&self.state.store, request.into_inner().id)
            .await
            .map_err(status)?;
        Ok(Response::new(JsonDocument {
            json: json_text(&detail),
        }))
    }

    async fn archive_findings(
        &self,
        request: Request<FindingIds>,
    ) -> Result<Response<ArchiveResult>, Status> {
        self.archive(request, true).await
    }

    async fn unarchive_findings(
        &self,
        request: Request<FindingIds>,
    ) -> Result<Response<ArchiveResult>, Status> {
        self.archive(request, false).await
    }

    type StreamFindingsStream = ChangeStream;

    async fn stream_findings(
        &self,
        request: Request<StreamFindingsRequest>,
    ) -> Result<Response<ChangeStream>, Status> {
        self.authorize(&request, Role::Read)?;
        let lines =
            tokio_stream::wrappers::ReceiverStream::new(super::http::change_lines(&self.state));
        let documents = tokio_stream::StreamExt::filter_map(lines, |line| {
            (!line.is_empty()).then_some(Ok(JsonDocument { json: line }))
        });
        Ok(Response::new(Box::pin(documents)))
    }

    async fn list_suppression_rules(
        &self,
        request: Request<Empty>,
    ) -> Result<Response<JsonDocuments>, Status> {
        self.authorize(&request, Role::Read)?;
        let rules = ops::list_rules(&self.state.store).await.map_err(status)?;
        Ok(Response::new(JsonDocuments {
            json: rules.iter().map(json_text).collect(),
        }))
    }

    async fn put_suppression_rule(
        &self,
        request: Request<JsonDocument>,
    ) -> Result<Response<Name>, Status> {
        self.authorize(&request, Role::Admin)?;
        let body = parse_json(&request.into_inner().json, "json")?;
        let name = ops::put_rule(&self.state, body).await.map_err(status)?;
        Ok(Response::new(Name { name }))
    }

    async fn delete_suppression_rule(
        &self,
        request: Request<Name>,
    ) -> Result<Response<Empty>, Status> {
        self.authorize(&request, Role::Admin)?;
        ops::delete_rule(&self.state, request.into_inner().name)
            .await
            .map_err(status)?;
        Ok(Response::new(Empty {}))
    }

    async fn list_lists(&self, request: Request<Empty>) -> Result<Response<JsonDocuments>, Status> {
        self.authorize(&request, Role::Read)?;
        let lists = ops::list_lists(&self.state.store).await.map_err(status)?;
        Ok(Response::new(JsonDocuments {
            json: lists.iter().map(json_text).collect(),
        }))
    }

    async fn put_list(
        &self,
        request: Request<JsonDocument>,
    ) -> Result<Response<JsonDocument>, Status> {
        self.authorize(&request, Role::Admin)?;
        let body = parse_json(&request.into_inner().json, "json")?;
        let record = ops::put_list(&self.state, &body).await.map_err(status)?;
        Ok(Response::new(JsonDocument {
            json: json_text(&record),
        }))
    }

    async fn delete_list(&self, request: Request<Name>) -> Result<Response<Empty>, Status> {
        self.authorize(&request, Role::Admin)?;
        ops::delete_list(&self.state, request.into_inner().name)
            .await
            .map_err(status)?;
        Ok(Response::new(Empty {}))
    }
}
