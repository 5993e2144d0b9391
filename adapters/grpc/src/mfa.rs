//! `gatehouse.v1.MfaService`: the caller's second factors. Served to signed-in
//! callers only (their Bearer token is checked before any RPC runs, see
//! `crate::caller`); every RPC acts on that user only.

use gatehouse_application::AppError;
use gatehouse_application::mfa::{
    ConfirmFactor, EnrollEmailFactor, EnrollPhoneFactor, EnrollTotp, ListFactors, RegenerateBackupCodes, RemoveFactor,
};
use gatehouse_domain::{EmailAddress, OneTimeCode, PhoneNumber};
use tonic::{Request, Response, Status};

use crate::caller::signed_in;
use crate::error::status;
use crate::factors::{factor, fresh_proof};
use crate::fields::{Fields, parsed};
use crate::pb;

/// `ConfirmFactor`'s code field.
const CODE: &str = "code";

/// The use cases behind `MfaService`.
#[derive(Clone, Debug)]
pub struct MfaApi {
    pub enroll_totp: EnrollTotp,
    pub enroll_email_factor: EnrollEmailFactor,
    pub enroll_phone_factor: EnrollPhoneFactor,
    pub confirm_factor: ConfirmFactor,
    pub list_factors: ListFactors,
    pub remove_factor: RemoveFactor,
    pub regenerate_backup_codes: RegenerateBackupCodes,
}

impl MfaApi {
    async fn enroll_totp(
        &self,
        mut request: Request<pb::EnrollTotpRequest>,
    ) -> Result<pb::EnrollTotpResponse, AppError> {
        let caller = signed_in(&mut request)?;
        let mut fields = Fields::default();
        let proof = fresh_proof(&mut fields, request.into_inner().proof.map(Into::into));
        let (proof,) = parsed!(fields, proof);
        let enrollment = self.enroll_totp.execute(caller.user_id, &proof).await?;
        Ok(pb::EnrollTotpResponse {
            factor_id: enrollment.factor_id.to_string(),
            secret: enrollment.secret,
            otpauth_uri: enrollment.uri,
            qr_code_png: enrollment.qr_png,
        })
    }

    async fn enroll_email_factor(
        &self,
        mut request: Request<pb::EnrollEmailFactorRequest>,
    ) -> Result<pb::EnrollEmailFactorResponse, AppError> {
        let caller = signed_in(&mut request)?;
        let req = request.into_inner();
        let mut fields = Fields::default();
        let email = fields.check("email", EmailAddress::parse(&req.email));
        let proof = fresh_proof(&mut fields, req.proof.map(Into::into));
        let (email, proof) = parsed!(fields, email, proof);
        let factor_id = self.enroll_email_factor.execute(caller.user_id, &email, &proof).await?;
        Ok(pb::EnrollEmailFactorResponse { factor_id: factor_id.to_string() })
    }

    async fn enroll_phone_factor(
        &self,
        mut request: Request<pb::EnrollPhoneFactorRequest>,
    ) -> Result<pb::EnrollPhoneFactorResponse, AppError> {
        let caller = signed_in(&mut request)?;
        let req = request.into_inner();
        let mut fields = Fields::default();
        let phone = fields.check("phone_number", PhoneNumber::parse(&req.phone_number));
        let proof = fresh_proof(&mut fields, req.proof.map(Into::into));
        let (phone, proof) = parsed!(fields, phone, proof);
        let factor_id = self.enroll_phone_factor.execute(caller.user_id, &phone, &proof).await?;
        Ok(pb::EnrollPhoneFactorResponse { factor_id: factor_id.to_string() })
    }

    async fn confirm_factor(
        &self,
        mut request: Request<pb::ConfirmFactorRequest>,
    ) -> Result<pb::ConfirmFactorResponse, AppError> {
        let caller = signed_in(&mut request)?;
        let req = request.into_inner();
        let mut fields = Fields::default();
        let factor_id = fields.uuid("factor_id", &req.factor_id);
        let code = fields.check(CODE, OneTimeCode::parse(&req.code));
        let (factor_id, code) = parsed!(fields, factor_id, code);
        let backup_codes = self.confirm_factor.execute(caller.user_id, factor_id, &code).await?;
        Ok(pb::ConfirmFactorResponse { backup_codes: backup_codes.unwrap_or_default() })
    }

    async fn list_factors(
        &self,
        mut request: Request<pb::ListFactorsRequest>,
    ) -> Result<pb::ListFactorsResponse, AppError> {
        let caller = signed_in(&mut request)?;
        let mut fields = Fields::default();
        let proof = fresh_proof(&mut fields, request.into_inner().proof.map(Into::into));
        let (proof,) = parsed!(fields, proof);
        let factors = self.list_factors.execute(caller.user_id, &proof).await?;
        Ok(pb::ListFactorsResponse { factors: factors.iter().map(factor).collect() })
    }

    async fn remove_factor(
        &self,
        mut request: Request<pb::RemoveFactorRequest>,
    ) -> Result<pb::RemoveFactorResponse, AppError> {
        let caller = signed_in(&mut request)?;
        let req = request.into_inner();
        let mut fields = Fields::default();
        let factor_id = fields.uuid("factor_id", &req.factor_id);
        let proof = fresh_proof(&mut fields, req.proof.map(Into::into));
        let (factor_id, proof) = parsed!(fields, factor_id, proof);
        self.remove_factor.execute(caller.user_id, factor_id, &proof).await?;
        Ok(pb::RemoveFactorResponse {})
    }

    async fn regenerate_backup_codes(
        &self,
        mut request: Request<pb::RegenerateBackupCodesRequest>,
    ) -> Result<pb::RegenerateBackupCodesResponse, AppError> {
        let caller = signed_in(&mut request)?;
        let req = request.into_inner();
        let mut fields = Fields::default();
        let proof = fresh_proof(&mut fields, req.proof.map(Into::into));
        let (proof,) = parsed!(fields, proof);
        let backup_codes = self.regenerate_backup_codes.execute(caller.user_id, &proof).await?;
        Ok(pb::RegenerateBackupCodesResponse { backup_codes })
    }
}

#[tonic::async_trait]
impl pb::mfa_service_server::MfaService for MfaApi {
    async fn enroll_totp(
        &self,
        request: Request<pb::EnrollTotpRequest>,
    ) -> Result<Response<pb::EnrollTotpResponse>, Status> {
        Self::enroll_totp(self, request).await.map(Response::new).map_err(status)
    }

    async fn enroll_email_factor(
        &self,
        request: Request<pb::EnrollEmailFactorRequest>,
    ) -> Result<Response<pb::EnrollEmailFactorResponse>, Status> {
        Self::enroll_email_factor(self, request).await.map(Response::new).map_err(status)
    }

    async fn enroll_phone_factor(
        &self,
        request: Request<pb::EnrollPhoneFactorRequest>,
    ) -> Result<Response<pb::EnrollPhoneFactorResponse>, Status> {
        Self::enroll_phone_factor(self, request).await.map(Response::new).map_err(status)
    }

    async fn confirm_factor(
        &self,
        request: Request<pb::ConfirmFactorRequest>,
    ) -> Result<Response<pb::ConfirmFactorResponse>, Status> {
        Self::confirm_factor(self, request).await.map(Response::new).map_err(status)
    }

    async fn list_factors(
        &self,
        request: Request<pb::ListFactorsRequest>,
    ) -> Result<Response<pb::ListFactorsResponse>, Status> {
        Self::list_factors(self, request).await.map(Response::new).map_err(status)
    }

    async fn remove_factor(
        &self,
        request: Request<pb::RemoveFactorRequest>,
    ) -> Result<Response<pb::RemoveFactorResponse>, Status> {
        Self::remove_factor(self, request).await.map(Response::new).map_err(status)
    }

    async fn regenerate_backup_codes(
        &self,
        request: Request<pb::RegenerateBackupCodesRequest>,
    ) -> Result<Response<pb::RegenerateBackupCodesResponse>, Status> {
        Self::regenerate_backup_codes(self, request).await.map(Response::new).map_err(status)
    }
}
